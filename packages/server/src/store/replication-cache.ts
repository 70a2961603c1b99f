// Replication rows kept in memory for reads, so that GET does not query the
// control plane every time. Several servers share that database, so a row is
// only trusted while this process hears of every change to it: a trigger
// (migration 2) NOTIFYs each changed id, a dedicated session LISTENs, and
// while that session is down nothing is cached and every read goes to the
// database. PostgreSQL signals the listening sessions as the writing
// transaction commits, before the writer's own client has its answer, so the
// notification of a change made through another server is on its way here
// while that server's client is still waiting for the result.
import pg from "pg";
import type { ReplicationRow, ReplicationStore } from "./replications";

export const CHANNEL = "heliosdb_replications";
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

  constructor(
    private readonly db: pg.Pool,
    private readonly store: ReplicationStore,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  /** Starts listening; resolves when the first attempt succeeded or failed (it retries either way). */
  async start(): Promise<void> {
    await this.connect();
  }

  /** The row as the database has it now: from memory while listening, else from the database. */
  async get(id: string): Promise<ReplicationRow | undefined> {
    if (this.listening) {
      const row = this.rows.get(id);
      if (row) return row;
    }
    const epoch = this.epoch;
    const row = await this.store.get(id);
    if (row && this.listening && epoch === this.epoch) {
      if (this.rows.size >= MAX_ROWS) this.rows.delete(this.rows.keys().next().value!);
      this.rows.set(id, row);
    }
    return row;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.down();
    await this.listener?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client((this.db as unknown as { options: pg.ClientConfig }).options);
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
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (lost || this.closed) return;
      // Whatever changed while not listening is unknown: start empty.
      this.rows.clear();
      this.epoch++;
      this.listening = true;
    } catch (e) {
      lose((e as Error).message);
    }
  }

  private down(): void {
    this.listening = false;
    this.epoch++;
    this.rows.clear();
  }
}
