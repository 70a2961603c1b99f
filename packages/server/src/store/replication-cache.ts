// Replication rows kept in memory for reads, so that GET does not query and
// parse a row of the control plane every time. Several servers share that
// database, so a row is only trusted while this process hears of every
// change to it: a trigger (migration 2) NOTIFYs each changed id, a dedicated
// session LISTENs, and while that session is down nothing is cached and
// every read goes to the database.
//
// A notification can still be on its way when a client, answered by the
// server that made the change, asks this one. So a read from memory first
// makes a round trip on the LISTEN session that starts after the read
// began: PostgreSQL signals the listening sessions as the writer commits,
// before the writer's client can have its answer, and a session sends the
// notifications it was signalled for before it answers the next query. When
// the round trip is back, every change committed before the read began has
// evicted its row here. Reads that arrive together share one round trip.
import pg from "pg";
import type { ReplicationRow, ReplicationStore } from "./replications";

export const CHANNEL = "heliosdb_replications";
export const APPLICATION_NAME = "heliosdb-replication-cache";
/** Rows kept at most; past it the oldest is dropped (and read again when asked for). */
const MAX_ROWS = 10_000;
const RECONNECT_MS = 1000;

export class ReplicationCache {
  private readonly rows = new Map<string, ReplicationRow>();
  private listener: pg.Client | undefined;
  private listening = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  // Bumped by every notification and every change of `listening`: a read that
  // saw it move while it queried may hold a row older than the change, and is
  // not kept.
  private epoch = 0;
  private inFlight: Promise<boolean> | undefined;
  private queued: Promise<boolean> | undefined;
  private readonly changeHandlers: ((id: string) => void)[] = [];

  constructor(
    private readonly db: pg.Pool,
    private readonly store: ReplicationStore,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  /** Calls `handler` with the id of each changed row, and "*" when any may have changed (a TRUNCATE, the session down or back). */
  onChange(handler: (id: string) => void): void {
    this.changeHandlers.push(handler);
  }

  private changed(id: string): void {
    for (const handler of this.changeHandlers) handler(id);
  }

  /** Starts listening; resolves when the first attempt succeeded or failed (it retries either way). */
  async start(): Promise<void> {
    await this.connect();
  }

  /** The row as the database has it now: from memory while listening, else from the database. */
  async get(id: string): Promise<ReplicationRow | undefined> {
    const kept = this.listening ? this.rows.get(id) : undefined;
    // Still the row after the round trip: no change committed before this read began evicted it.
    if (kept && (await this.caughtUp()) && this.listening && this.rows.get(id) === kept) return kept;
    const epoch = this.epoch;
    const row = await this.store.get(id);
    if (row && this.listening && epoch === this.epoch) {
      if (this.rows.size >= MAX_ROWS) this.rows.delete(this.rows.keys().next().value!);
      this.rows.set(id, row);
    }
    return row;
  }

  /**
   * The row as this server last heard of it — without the round trip that
   * catches up with changes committed elsewhere a moment ago — else as the
   * database has it. For periodic reads (a metric stream's samples), where a
   * notification still in flight only delays what the next one shows.
   */
  async latest(id: string): Promise<ReplicationRow | undefined> {
    return (this.listening ? this.rows.get(id) : undefined) ?? this.get(id);
  }

  // Resolves true once a round trip on the LISTEN session that started after
  // this call has come back (false when the session failed meanwhile). A
  // round trip starts once the one in flight is back and the I/O of the
  // event loop's turn has been read, so that the reads that came in together
  // share it: under load one round trip answers many reads.
  private caughtUp(): Promise<boolean> {
    if (this.queued) return this.queued;
    const after = this.inFlight ?? Promise.resolve(true);
    this.queued = after.then(nextTurn).then(() => this.roundTrip());
    return this.queued;
  }

  private roundTrip(): Promise<boolean> {
    this.queued = undefined;
    // An empty query: the cheapest round trip PostgreSQL answers (nothing to parse or plan).
    const trip = this.listener!.query("").then(
      () => true,
      () => false,
    );
    this.inFlight = trip;
    void trip.then(() => {
      if (this.inFlight === trip) this.inFlight = undefined;
    });
    return trip;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.down();
    await this.listener?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    // Named, so that an operator (or a test) can tell it among the pool's sessions.
    const client = new pg.Client({ ...(this.db as unknown as { options: pg.ClientConfig }).options, application_name: APPLICATION_NAME });
    this.listener = client;
    let lost = false;
    const lose = (why: string) => {
      if (lost) return;
      lost = true;
      this.down();
      client.end().catch(() => undefined);
      if (this.closed) return;
      this.log(`replication cache off until the control plane's LISTEN session is back (${why})`);
      this.retry = setTimeout(() => void this.connect(), RECONNECT_MS);
    };
    client.on("error", (e) => lose(e.message));
    client.on("end", () => lose("session ended"));
    client.on("notification", (n) => {
      this.epoch++;
      // A TRUNCATE names no row ("*"): forget them all.
      if (n.payload && n.payload !== "*") this.rows.delete(n.payload);
      else this.rows.clear();
      this.changed(n.payload || "*");
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (lost || this.closed) return;
      // Whatever changed while not listening is unknown: start empty.
      this.rows.clear();
      this.epoch++;
      this.listening = true;
      this.changed("*");
    } catch (e) {
      lose((e as Error).message);
    }
  }

  private down(): void {
    this.listening = false;
    this.epoch++;
    this.rows.clear();
    this.changed("*");
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
