// Who holds a socket's reading paused. Two reasons may: the delivery queue
// (too much waits for the consumer) and read coalescing (a moment's pause
// after a small read, so the next read takes many messages at once instead
// of one). The socket reads again only when neither holds it.
import type { Duplex } from "node:stream";

export type PauseReason = "queue" | "coalesce";

const TRICKLE_WINDOW_MS = 10;
const TRICKLE_READS = 10;

export class ReadGate {
  private readonly held = new Set<PauseReason>();
  private timer: NodeJS.Timeout | undefined;
  // Small reads in the current window of TRICKLE_WINDOW_MS.
  private windowStart = 0;
  private smallReads = 0;
  // When the last coalescing pause ended, until the read after it (0: none pending).
  private resumedAt = 0;

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
   * After a read of fewer than `belowBytes` that comes in a trickle of them
   * (TRICKLE_READS within TRICKLE_WINDOW_MS: thousands of reads a second),
   * pauses reading for `ms`: a stream of small transactions then costs one
   * read (and one wakeup) per few milliseconds instead of three per
   * transaction. Only a read that ends between transactions (`betweenTransactions`)
   * pauses: in the middle of one its sender is mid-send, and pausing it there
   * raised the lag of 100-row transactions at 10,000 rows/s from p99 67 to
   * 162 ms (bench/engine, lag). While the trickle lasts — the first read after a pause
   * finds data that waited during it, and it is small — reading pauses again
   * at once: counting TRICKLE_READS small reads anew after each pause left
   * two reads in three as small as before (measured: 0.67 reads per
   * single-row transaction). A large read (a bulk stream: data waits anyway)
   * or a read that comes later than a pause's length after it (a slower
   * stream) ends it. Slower streams are never paused: there a pause saves
   * little and, measured, delays apply by far more than its own length (the
   * walsender, finding the socket full, waits before it sends again).
   */
  coalesce(chunkBytes: number, belowBytes: number, ms: number, betweenTransactions = true): void {
    if (ms <= 0 || this.held.has("coalesce")) return;
    const now = Date.now();
    const trickling = this.resumedAt !== 0 && now - this.resumedAt <= ms;
    this.resumedAt = 0;
    if (chunkBytes >= belowBytes || !betweenTransactions) return;
    if (!trickling) {
      if (now - this.windowStart > TRICKLE_WINDOW_MS) {
        this.windowStart = now;
        this.smallReads = 0;
      }
      if (++this.smallReads < TRICKLE_READS) return;
      this.smallReads = 0;
    }
    this.hold("coalesce");
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.resumedAt = Date.now();
      this.release("coalesce");
    }, ms);
  }

  /** Ends coalescing and releases every hold: the socket reads again. */
  open(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.resumedAt = 0;
    this.held.clear();
    this.socket.resume();
  }
}
