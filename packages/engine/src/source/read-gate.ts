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
   * transaction.
   *
   * While the trickle lasts (the first read after a pause comes within a
   * pause's length, with the data that waited, and is small) reading pauses
   * again at once: counting TRICKLE_READS small reads anew after each pause
   * left 0.67 reads per single-row transaction. A large read (a bulk stream:
   * data waits anyway) or a late one (a slower stream) ends it.
   *
   * The trickle goes on only from a read that ends between transactions
   * (`betweenTransactions`). Going on from any small read (the middle of a
   * large transaction, streamed a row at a time, included) paused reading
   * after nearly every read of 100-row transactions at 10,000 rows/s and
   * raised their lag from p99 67 to 162 ms (bench/engine, lag). Slower
   * streams are never paused: there a pause saves little and, measured,
   * delays apply by far more than its own length (the walsender, finding the
   * socket full, waits before it sends again).
   */
  coalesce(chunkBytes: number, belowBytes: number, ms: number, betweenTransactions = true): void {
    if (ms <= 0 || this.held.has("coalesce")) return;
    const now = Date.now();
    const trickling = this.resumedAt !== 0 && now - this.resumedAt <= ms && betweenTransactions;
    this.resumedAt = 0;
    if (chunkBytes >= belowBytes) return;
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
