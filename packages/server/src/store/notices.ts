// A LISTEN session on channels of the control plane, for caches that
// several servers keep of the same rows: a cache may trust what it holds only
// while this session listens, and a read that must see every change committed
// before it began waits for `caughtUp()` — a round trip on this session that
// started after the read. PostgreSQL signals listening sessions as the writer
// commits, before the writer's client has its answer, and a session delivers
// the notifications it was signalled for before it answers its next query; so
// once the round trip is back, every such change has been heard (as
// replication-cache.ts does for replications).
//
// Any statement on this session is such a round trip, not only the empty
// query: `query()` runs one here (the rate-limit decision of every call), and
// a call that took a `ticket()` as it arrived is caught up, without a trip
// of its own, once a statement sent after its ticket is back.
import pg from "pg";

const RECONNECT_MS = 1000;

export class Notices {
  private listener: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private inFlight: Promise<boolean> | undefined;
  private queued: Promise<boolean> | undefined;
  private readonly handlers: { handler: (payload: string) => void; channel: string | undefined }[] = [];
  readonly channels: readonly string[];
  /** Whether this session listens: while not, caches must not trust what they hold. */
  listening = false;
  /**
   * Moves with every notification and every change of `listening`: a read
   * that saw it move while it queried may hold a row older than a change,
   * and is not kept.
   */
  epoch = 0;
  // Round trips handed to the session, and how many of them are back (a session answers in order).
  private sent = 0;
  private answered = 0;

  /**
   * `channels`: one, or several whose caches should share round trips (the
   * server's replication cache and its credentials: one statement after a
   * request arrived then catches both up).
   */
  constructor(
    private readonly db: pg.Pool,
    channels: string | readonly string[],
    private readonly applicationName: string,
    private readonly log: (message: string) => void = () => undefined,
  ) {
    this.channels = typeof channels === "string" ? [channels] : channels;
  }

  /**
   * Calls `handler` with each notification's payload (of `channel` only, when
   * named), and with "*" when everything must be forgotten (the session was down).
   */
  on(handler: (payload: string) => void, channel?: string): void {
    this.handlers.push({ handler, channel });
  }

  /** Starts listening; resolves when the first attempt succeeded or failed (it retries either way). */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.down();
    await this.listener?.end().catch(() => undefined);
  }

  /** A mark of now, for `caughtUp`: the round trips handed to the session so far. */
  ticket(): number {
    return this.sent;
  }

  /**
   * Resolves true once a round trip that started after this call (or after
   * `ticket` was taken) is back (false when the session is not listening or
   * failed meanwhile). Calls of one event-loop turn share a round trip.
   */
  caughtUp(ticket?: number): Promise<boolean> {
    if (!this.listening) return Promise.resolve(false);
    if (ticket !== undefined && this.answered > ticket) return Promise.resolve(true);
    if (this.queued) return this.queued;
    const after = this.inFlight ?? Promise.resolve(true);
    this.queued = after.then(nextTurn).then(() => this.roundTrip());
    return this.queued;
  }

  /**
   * Runs a statement on this session (a round trip that catches callers up
   * as well); undefined when the session is not listening: the caller then
   * runs it on the pool.
   */
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> | undefined {
    if (!this.listening || !this.listener) return undefined;
    return this.trip(this.listener.query<R>(config));
  }

  private roundTrip(): Promise<boolean> {
    this.queued = undefined;
    if (!this.listening || !this.listener) return Promise.resolve(false);
    // An empty query: the cheapest round trip PostgreSQL answers.
    const trip = this.trip(this.listener.query("")).then(
      () => this.listening,
      () => false,
    );
    this.inFlight = trip;
    void trip.then(() => {
      if (this.inFlight === trip) this.inFlight = undefined;
    });
    return trip;
  }

  // Counts a round trip: numbered as handed to pg (which sends it then, or after the one before), answered in order.
  // A failed one counts for nothing (the session may be gone with what it had not delivered).
  private trip<T>(answer: Promise<T>): Promise<T> {
    const n = ++this.sent;
    answer.then(
      () => void (this.answered = Math.max(this.answered, n)),
      () => undefined,
    );
    return answer;
  }

  private emit(payload: string, channel?: string): void {
    this.epoch++;
    for (const h of this.handlers) if (!channel || !h.channel || h.channel === channel) h.handler(payload);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ ...(this.db as unknown as { options: pg.ClientConfig }).options, application_name: this.applicationName });
    this.listener = client;
    let lost = false;
    const lose = (why: string) => {
      if (lost) return;
      lost = true;
      this.down();
      client.end().catch(() => undefined);
      if (this.closed) return;
      this.log(`${this.applicationName}: caches off until the control plane's LISTEN session is back (${why})`);
      this.retry = setTimeout(() => void this.connect(), RECONNECT_MS);
    };
    client.on("error", (e) => lose(e.message));
    client.on("end", () => lose("session ended"));
    client.on("notification", (n) => this.emit(n.payload ?? "*", n.channel));
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
      if (lost || this.closed) return;
      // Whatever changed while not listening is unknown: start empty.
      this.emit("*");
      this.listening = true;
    } catch (e) {
      lose((e as Error).message);
    }
  }

  private down(): void {
    this.listening = false;
    this.emit("*");
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
