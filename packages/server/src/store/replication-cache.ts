// Replication rows kept in memory for reads, so that GET does not query and
// parse a row of the control plane every time. Several servers share that
// database, so a row is only trusted while this process hears of every
// change to it: a trigger (migration 2) NOTIFYs each changed id, a dedicated
// session LISTENs (store/notices.ts), and while that session is down nothing
// is cached and every read goes to the database.
//
// A notification can still be on its way when a client, answered by the
// server that made the change, asks this one. So a read from memory first
// waits for a round trip on the LISTEN session that started after the
// request arrived: PostgreSQL signals the listening sessions as the writer
// commits, before the writer's client can have its answer, and a session
// sends the notifications it was signalled for before it answers the next
// query. When the round trip is back, every change committed before the
// request arrived has evicted its row here. Reads that arrive together share
// one round trip, and a call whose rate-limit decision ran on this session
// after it arrived (app.ts) needs none of its own.
import type pg from "pg";
import { Notices } from "./notices";
import type { ReplicationRow, ReplicationStore } from "./replications";

export const CHANNEL = "heliosdb_replications";
export const APPLICATION_NAME = "heliosdb-replication-cache";
/** Rows kept at most; past it the oldest is dropped (and read again when asked for). */
const MAX_ROWS = 10_000;

/**
 * The LISTEN session of the replication cache (named, so that an operator or
 * a test can tell it among the pool's), also on `channels` of other caches
 * that should share its round trips.
 */
export function replicationNotices(db: pg.Pool, log?: (message: string) => void, channels: string[] = []): Notices {
  return new Notices(db, [CHANNEL, ...channels], APPLICATION_NAME, log);
}

export class ReplicationCache {
  private readonly rows = new Map<string, ReplicationRow>();
  // The read of a row from the database that is out, by id.
  private readonly reading = new Map<string, Promise<ReplicationRow | undefined>>();

  constructor(
    private readonly store: ReplicationStore,
    private readonly notices: Notices,
  ) {
    // A TRUNCATE names no row ("*"), nor does a session that was down: forget them all.
    notices.on((payload) => {
      if (payload === "*") this.rows.clear();
      else this.rows.delete(payload);
    }, CHANNEL);
  }

  /** Calls `handler` with the id of each changed row, and "*" when any may have changed (a TRUNCATE, the session down or back). */
  onChange(handler: (id: string) => void): void {
    this.notices.on((payload) => handler(payload || "*"), CHANNEL);
  }

  /**
   * The row as this server last heard of it — without the round trip that
   * catches up with changes committed elsewhere a moment ago — else as the
   * database has it. For periodic reads (a metric stream's samples), where a
   * notification still in flight only delays what the next one shows.
   */
  async latest(id: string): Promise<ReplicationRow | undefined> {
    return this.kept(id) ?? this.get(id);
  }

  /** The row as the last notification left it, while listening; undefined when not kept (then read it with `latest`). */
  kept(id: string): ReplicationRow | undefined {
    return this.notices.listening ? this.rows.get(id) : undefined;
  }

  /**
   * The row as the database had it when the request arrived (`ticket`, the
   * session's mark then), or later: from memory while listening, else from
   * the database.
   */
  async get(id: string, ticket?: number): Promise<ReplicationRow | undefined> {
    const kept = this.notices.listening ? this.rows.get(id) : undefined;
    // Still the row after the round trip: no change committed before the request arrived evicted it.
    if (kept && (await this.notices.caughtUp(ticket)) && this.rows.get(id) === kept) return kept;
    // A read of the row already out: after an eviction every GET in flight misses at once, and each read of its
    // own cost a query and the parse of a row (hundreds a second under load). Its row, once kept, is then trusted
    // as any kept row: behind a round trip sent after this request arrived.
    const reading = this.notices.listening ? this.reading.get(id) : undefined;
    if (reading) {
      await reading.catch(() => undefined);
      const read = this.rows.get(id);
      if (read && (await this.notices.caughtUp(ticket)) && this.rows.get(id) === read) return read;
    }
    return this.read(id);
  }

  private async read(id: string): Promise<ReplicationRow | undefined> {
    const epoch = this.notices.epoch;
    const reading = this.store.get(id);
    this.reading.set(id, reading);
    try {
      const row = await reading;
      if (row && this.notices.listening && epoch === this.notices.epoch) {
        if (this.rows.size >= MAX_ROWS) this.rows.delete(this.rows.keys().next().value!);
        this.rows.set(id, row);
      }
      return row;
    } finally {
      if (this.reading.get(id) === reading) this.reading.delete(id);
    }
  }
}
