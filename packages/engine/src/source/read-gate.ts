// Who holds a socket's reading paused. Two reasons may: the delivery queue
// (too much waits for the consumer) and read coalescing (a moment's pause
// after a small read, so the next read takes many messages at once instead
// of one). The socket reads again only when neither holds it.
import type { Duplex } from "node:stream";

export type PauseReason = "queue" | "coalesce";

export class ReadGate {
  private readonly held = new Set<PauseReason>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly socket: Duplex) {}

  hold(reason: PauseReason): void {
    if (this.held.size === 0) this.socket.pause();
    this.held.add(reason);
  }

  release(reason: PauseReason): void {
    if (!this.held.delete(reason)) return;
    if (this.held.size === 0) this.socket.resume();
  }

  /**
   * After a read of fewer than `belowBytes`, pauses reading for `ms`: a
   * stream of small transactions then costs one read (and one wakeup) per
   * few milliseconds instead of three per transaction, for at most `ms` of
   * added latency. Large reads, a sign that data is already waiting, are not paused.
   */
  coalesce(chunkBytes: number, belowBytes: number, ms: number): void {
    if (ms <= 0 || chunkBytes >= belowBytes || this.held.has("coalesce")) return;
    this.hold("coalesce");
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.release("coalesce");
    }, ms);
  }

  /** Ends coalescing and releases every hold: the socket reads again. */
  open(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held.clear();
    this.socket.resume();
  }
}
