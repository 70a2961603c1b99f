// One operation at a time per job, operations on different jobs side by
// side: a control request's reconciliation of one replication never waits
// for a pass over the others, and never runs beside another one of the same
// replication (both would find it unowned and, holding the same lease, both
// start it).
export class Serial {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once the operations on `key` queued before it have settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Settles once every operation queued so far has. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}
