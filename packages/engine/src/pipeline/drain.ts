// Waiting for the target to have committed everything up to a source
// position (a fence's final LSN, at a cutover). Event-driven: the figures
// call reached() each time the target commits an applied position, and
// halted() when the pipeline pauses, stops or fails, so a wait ends on the
// commit that covers it, or on the event that means it never will.
import { formatLsn, type Lsn } from "../types";

export interface DrainOptions {
  signal?: AbortSignal;
  /** Gives up after this long (default: waits as long as the pipeline runs). */
  timeoutMs?: number;
}

/** The target did not reach the position: the pipeline halted, the wait timed out or was aborted. */
export class DrainError extends Error {
  override readonly name = "DrainError";
  constructor(
    message: string,
    readonly reason: "halted" | "timeout" | "aborted",
    /** The position waited for, and the last one the target had committed. */
    readonly targetLsn: Lsn,
    readonly appliedLsn: Lsn,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface Waiter {
  lsn: Lsn;
  resolve: (applied: Lsn) => void;
  fail: (reason: DrainError["reason"], message: string, cause?: unknown) => void;
}

export class DrainWaiters {
  private readonly waiters = new Set<Waiter>();
  private applied: Lsn = 0n;

  /**
   * Resolves with the applied position once it is at or past `lsn`.
   * `halted` says why the pipeline will not get there (it does not run); a
   * position already reached resolves even then.
   */
  wait(lsn: Lsn, applied: Lsn, halted: string | undefined, options: DrainOptions = {}): Promise<Lsn> {
    this.applied = applied > this.applied ? applied : this.applied;
    if (this.applied >= lsn) return Promise.resolve(this.applied);
    if (halted) return Promise.reject(this.error("halted", lsn, `the replication ${halted}`));
    if (options.signal?.aborted) return Promise.reject(this.error("aborted", lsn, "the wait was aborted", options.signal.reason));
    return new Promise<Lsn>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => waiter.fail("aborted", "the wait was aborted", options.signal?.reason);
      const settle = () => {
        this.waiters.delete(waiter);
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        lsn,
        resolve: (at) => {
          settle();
          resolve(at);
        },
        fail: (reason, message, cause) => {
          settle();
          reject(this.error(reason, lsn, message, cause));
        },
      };
      this.waiters.add(waiter);
      if (options.timeoutMs !== undefined) timer = setTimeout(() => waiter.fail("timeout", `not reached within ${options.timeoutMs} ms`), options.timeoutMs);
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The target committed everything up to `lsn`. */
  reached(lsn: Lsn): void {
    if (lsn > this.applied) this.applied = lsn;
    for (const w of this.waiters) if (w.lsn <= lsn) w.resolve(lsn);
  }

  /** The pipeline stopped applying (`why`: "paused", "stopped", "failed: …"): no wait can end well. */
  halted(why: string, cause?: unknown): void {
    for (const w of this.waiters) w.fail("halted", `the replication ${why}`, cause);
  }

  private error(reason: DrainError["reason"], lsn: Lsn, why: string, cause?: unknown): DrainError {
    return new DrainError(
      `drain to ${formatLsn(lsn)} ended before the target applied it (applied ${formatLsn(this.applied)}): ${why}`,
      reason,
      lsn,
      this.applied,
      cause === undefined ? undefined : { cause },
    );
  }
}
