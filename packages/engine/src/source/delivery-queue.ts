// In-order, one-at-a-time delivery from a socket to an async consumer, with
// bounded memory: the producer is told to pause when the queue is too long or
// too heavy, so a slow consumer pushes back on the server through TCP.

/** How a DeliveryQueue reaches its producer and consumer. */
export interface DeliveryQueueOptions<T> {
  /** Pause the producer once more than this many items wait. */
  maxItems: number;
  /** Pause the producer once more than this many bytes wait. */
  maxBytes: number;
  pause(): void;
  resume(): void;
  /** Handles one item; the next waits for a returned promise. */
  deliver(item: T): void | Promise<void>;
  /**
   * Makes an item safe to keep: called only for items that must wait, so
   * one handled at once may borrow the producer's buffer (which the
   * producer reuses after push returns).
   */
  retain?(item: T): T;
  /** Called once with the first error deliver() throws; delivery stops there. */
  fail(error: unknown): void;
}

export class DeliveryQueue<T> {
  private items: Array<{ item: T; bytes: number }> = [];
  private head = 0;
  private bytes = 0;
  private paused = false;
  private draining = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  private _maxItems = 0;
  private _maxBytes = 0;

  constructor(private readonly options: DeliveryQueueOptions<T>) {}

  /** Most items ever waiting at once: how far the bound was overshot by data already read. */
  get maxQueued(): number {
    return this._maxItems;
  }
  /** Most bytes ever waiting at once. */
  get maxQueuedBytes(): number {
    return this._maxBytes;
  }

  private get length(): number {
    return this.items.length - this.head;
  }

  push(item: T, bytes: number): void {
    if (this.stopped) return;
    // Nothing waits and nothing runs: deliver now, without a queue entry or a promise.
    if (!this.draining && this.length === 0) {
      let result: void | Promise<void>;
      try {
        result = this.options.deliver(item);
      } catch (error) {
        this.stop();
        this.options.fail(error);
        return;
      }
      if (result && typeof (result as Promise<void>).then === "function") void this.drain(result);
      return;
    }
    this.items.push({ item: this.options.retain ? this.options.retain(item) : item, bytes });
    this.bytes += bytes;
    this._maxItems = Math.max(this._maxItems, this.length);
    this._maxBytes = Math.max(this._maxBytes, this.bytes);
    if (!this.paused && (this.length > this.options.maxItems || this.bytes > this.options.maxBytes)) {
      this.paused = true;
      this.options.pause();
    }
  }

  /** Drops whatever waits and delivers nothing more; an item being handled finishes. */
  stop(): void {
    this.stopped = true;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    // The producer must run again to read what follows (e.g. the end of the stream).
    this.resumeProducer();
  }

  /** Whether nothing waits and no deliver() call is running: every item pushed so far has been handled. */
  get settled(): boolean {
    return !this.draining && this.length === 0;
  }

  /** Resolves when no deliver() call is running. */
  idle(): Promise<void> {
    if (!this.draining) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private resumeProducer(): void {
    if (!this.paused) return;
    this.paused = false;
    this.options.resume();
  }

  private shift(): T | undefined {
    if (this.stopped || this.head >= this.items.length) return undefined;
    const entry = this.items[this.head++];
    // Compact now and then so delivered entries are freed without an O(n) shift per item.
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 4096) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    if (!entry) return undefined;
    this.bytes -= entry.bytes;
    // Hysteresis: resuming at half keeps the socket from toggling on every item.
    if (this.length <= this.options.maxItems / 2 && this.bytes <= this.options.maxBytes / 2) this.resumeProducer();
    return entry.item;
  }

  // Delivers what waits, in order, once `pending` (the delivery that made them wait) settles.
  private async drain(pending: Promise<void>): Promise<void> {
    this.draining = true;
    try {
      await pending;
      for (let item = this.shift(); item !== undefined; item = this.shift()) {
        const result = this.options.deliver(item);
        // Awaiting only real promises spares synchronous consumers a microtask per item.
        if (result && typeof (result as Promise<void>).then === "function") await result;
      }
    } catch (error) {
      this.stop();
      this.options.fail(error);
    } finally {
      this.draining = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
