// Initial syncs are the expensive part of a replication: when more want to
// run than there are workers, the highest `priority` (0–100) goes first, and
// among equals the one that asked first.
interface Waiting {
  priority: number;
  order: number;
  start: () => void;
}

export class WorkerPool {
  private busy = 0;
  private order = 0;
  private readonly waiting: Waiting[] = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new Error("a worker pool needs at least one worker");
  }

  /** Runs `task` when a worker is free, by priority. */
  async run<T>(priority: number, task: () => Promise<T>): Promise<T> {
    if (this.busy >= this.size) {
      await new Promise<void>((start) => {
        this.waiting.push({ priority, order: this.order++, start });
        this.waiting.sort((a, b) => b.priority - a.priority || a.order - b.order);
      });
    } else {
      this.busy++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The worker passes straight to the next task, so `busy` stays the same.
      if (next) next.start();
      else this.busy--;
    }
  }

  /** Tasks waiting for a worker. */
  get queued(): number {
    return this.waiting.length;
  }
}
