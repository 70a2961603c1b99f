// Test support: holds a failover at a named point inside its steps (the
// server's `failover.pause` option), until the test has looked at what it
// wants to see there.
import type { PausePoint } from "../../src/controller/failover/deps";

export interface Hold {
  /** Resolves with the failover's id once it waits at the point. */
  reached: Promise<string>;
  release(): void;
}

/** Also a migration's phases (P: its pause points). */
export class Holds<P extends string = PausePoint> {
  private readonly waiting = new Map<P, { reached: (id: string) => void; released: Promise<void> }>();
  private readonly releases: (() => void)[] = [];

  /** The next failover to reach `point` waits there until released. */
  hold(point: P): Hold {
    let reached!: (id: string) => void;
    let release!: () => void;
    const reachedP = new Promise<string>((r) => (reached = r));
    const released = new Promise<void>((r) => (release = r));
    this.waiting.set(point, { reached, released });
    this.releases.push(release);
    return { reached: reachedP, release };
  }

  /** The server's pause hook. */
  readonly pause = async (point: P, failoverId: string, signal: AbortSignal): Promise<void> => {
    const h = this.waiting.get(point);
    if (!h) return;
    this.waiting.delete(point);
    h.reached(failoverId);
    await new Promise<void>((resolve, reject) => {
      const abort = () => reject(signal.reason);
      signal.addEventListener("abort", abort, { once: true });
      void h.released.then(() => {
        signal.removeEventListener("abort", abort);
        resolve();
      });
    });
  };

  /** Lets every held failover go (a test's cleanup). */
  releaseAll(): void {
    this.waiting.clear();
    for (const r of this.releases) r();
  }
}
