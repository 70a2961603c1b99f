// What the event and metric feeds share: a subscriber that sleeps until it is
// woken, its timer runs out or its call ends — and that leaves nothing behind
// (no timer, no listener) once its call ends.

export class Subscriber {
  /** Set by a wake-up; the feed clears it before it reads, so a wake-up during a read is not lost. */
  dirty = false;
  private resume: (() => void) | undefined;

  // One abort listener for the subscriber's life, not one per sleep: an
  // EventTarget's add and remove cost more than the rest of a sleep, and a
  // feed of thousands of subscribers sleeps once per sample each.
  constructor(readonly signal: AbortSignal) {
    signal.addEventListener("abort", () => this.resume?.(), { once: true });
  }

  wake(): void {
    this.dirty = true;
    this.resume?.();
  }

  /** Resolves when woken (or already woken since `dirty` was cleared), after `ms`, or when the call ends. */
  sleep(ms: number): Promise<void> {
    if (this.dirty || this.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.resume = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.resume = done;
    });
  }
}

/** The subscribers of one feed: how many are open, and which to wake. */
export class SubscriberSet<K> {
  private readonly open = new Map<Subscriber, K>();

  get size(): number {
    return this.open.size;
  }

  add(subscriber: Subscriber, key: K): void {
    this.open.set(subscriber, key);
  }

  delete(subscriber: Subscriber): void {
    this.open.delete(subscriber);
  }

  /** Whether some subscriber's key matches. */
  some(matches: (key: K) => boolean): boolean {
    for (const key of this.open.values()) if (matches(key)) return true;
    return false;
  }

  wake(matches: (key: K) => boolean = () => true): void {
    for (const [subscriber, key] of this.open) if (matches(key)) subscriber.wake();
  }
}
