// Recovery: a failure that can pass (a database gone, a connection lost) is
// retried after a backoff until the replication streams again. Each
// failure's ReplicationError event says what failed (error, error_code,
// SQLSTATE), on which side, and whether the engine tries again, with the
// attempt and the delay. An attempt's outcome is what whenStreaming() waits for.
import { Backoff, errorCode, isRetryable, sideOf, sqlStateOf, type Side } from "../failure";
import type { PipelineContext } from "./context";

export interface Failure {
  message: string;
  side: Side | undefined;
  details: Record<string, string>;
  /** The delay before the next attempt; undefined when only a person can mend it. */
  delay: number | undefined;
}

export class Recovery {
  private readonly backoff: Backoff;
  private timer?: NodeJS.Timeout;
  private streaming?: { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> };
  // Whether the current attempt's stream has delivered a message.
  private flowing = false;

  constructor(private readonly ctx: PipelineContext) {
    this.backoff = new Backoff(ctx.deps.retry);
  }

  /** Whether a retry waits for its time. */
  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  /** A start the API asked for: earlier failures are forgotten. */
  reset(): void {
    this.backoff.reset();
    this.ctx.figures.retry = undefined;
  }

  /** An attempt begins. */
  begin(): void {
    this.streaming = deferred();
    this.flowing = false;
  }

  whenStreaming(): Promise<void> {
    return this.streaming?.promise ?? Promise.reject(new Error("the replication was not started"));
  }

  /** A message of the stream. */
  delivered(): void {
    // The first message (a heartbeat at the latest) shows the stream runs.
    if (!this.flowing) this.streamRuns();
  }

  // The stream delivers again: a failure it recovered from is over.
  private streamRuns(): void {
    this.flowing = true;
    this.streaming?.resolve();
    if (this.backoff.attempts > 0) {
      this.ctx.emit("ReplicationRecovered", "Info", `streaming again after ${this.backoff.attempts} failed attempt(s)`, {
        retry_count: String(this.backoff.attempts),
      });
    }
    this.reset();
  }

  /** Reports a failure of the attempt; the caller halts the run, then schedules the retry if there is one. */
  failed(error: unknown): Failure {
    this.streaming?.reject(error);
    this.streaming?.promise.catch(() => undefined);
    this.streaming = undefined;
    const message = error instanceof Error ? error.message : String(error);
    const retryable = isRetryable(error);
    const side = sideOf(error);
    const delay = retryable ? this.backoff.next() : 0;
    const details: Record<string, string> = {
      error: error instanceof Error ? error.name : "Error",
      error_code: errorCode(error),
      side: side ?? "engine",
      retryable: String(retryable),
    };
    const sqlState = sqlStateOf(error);
    if (sqlState) details.sqlstate = sqlState;
    if (retryable) Object.assign(details, { retry_count: String(this.backoff.attempts), retry_in_seconds: (delay / 1000).toFixed(1) });
    const text = retryable ? `${side ?? "the engine"} failed: ${message}; retry ${this.backoff.attempts} in ${details.retry_in_seconds} s` : message;
    this.ctx.emit("ReplicationError", "Error", text, details);
    return { message, side, details, delay: retryable ? delay : undefined };
  }

  /** The retry's state, in the figures while it waits. */
  waiting(failure: Failure): void {
    const { message, side, details } = failure;
    this.ctx.figures.retry = { attempts: this.backoff.attempts, nextAttemptAt: new Date(Date.now() + failure.delay!), errorCode: details.error_code!, message, ...(side ? { side } : {}) };
  }

  /** Runs `retry` after the failure's delay, unless cancel() comes first. */
  schedule(failure: Failure, retry: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      retry();
    }, failure.delay);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  // An attempt found what only a person can mend (e.g. a configuration the source now refuses).
  gaveUp(error: unknown): void {
    this.ctx.figures.retry = undefined;
    const message = error instanceof Error ? error.message : String(error);
    const sqlState = sqlStateOf(error);
    this.ctx.emit("ReplicationError", "Error", message, {
      error: error instanceof Error ? error.name : "Error",
      error_code: errorCode(error),
      retryable: "false",
      ...(sqlState ? { sqlstate: sqlState } : {}),
    });
  }
}

function deferred(): { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { resolve, reject, promise };
}
