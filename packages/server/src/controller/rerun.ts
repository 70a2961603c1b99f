// One read at a time for everyone who asks, and no request lost: a call
// while a run is under way makes it run once more when done (what was heard
// during a read may have been committed after it looked). A failure ends the
// run quietly: the feeds that use it (events, routing) also poll, and the
// next call or poll reads again.
export class Rerun {
  private running: Promise<void> | undefined;
  private again = false;

  run(work: () => Promise<void>): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await work();
        } while (this.again);
      } catch {
        // Read again at the next call or poll.
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
