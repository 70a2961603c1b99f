// The event log: what happened to each replication, each event with an id
// that is also the streams' cursor.
//
// Why an id is a safe cursor here, with several servers appending at once:
// an append takes its ids by updating the one row of `event_log` in the same
// statement as its INSERT (migration 10). That row lock is held until the
// append commits, and PostgreSQL makes a transaction visible before it
// releases its locks; the next append waits for the lock, then reads the
// committed counter. So ids are given in commit order: a reader that sees id
// N sees every id below it, and ids are dense (a failed append rolls its
// counter back with it). A reader reads, in one statement (one snapshot), the
// counter H and the events after its cursor up to H: every event up to H is
// committed and visible, none is skipped, and the next read starts after H.
// A bigserial would not do: ids taken at INSERT become visible at COMMIT, in
// another order. The price is that appends are serialized across the control
// plane (one short UPDATE per append or batch); events are few.
//
// Retention removes a prefix of the log and records through which id in
// `pruned_through`, so a cursor before it is known to be expired, never a
// silent gap.
import type pg from "pg";

export interface EventRecord {
  /** Empty for events of no replication (none yet; failovers and migrations name theirs). */
  replicationId: string;
  tenantId: string;
  type: string;
  severity: string;
  message: string;
  details: Record<string, unknown>;
}

export interface StoredEvent {
  id: bigint;
  replicationId: string;
  tenantId: string;
  type: string;
  severity: string;
  message: string;
  details: Record<string, string>;
  at: Date;
}

export interface EventQuery {
  replicationId?: string;
  tenantId?: string;
  severities: string[];
  types: string[];
}

export interface EventPage {
  events: StoredEvent[];
  /** The page stopped at its bounds (rows or bytes): more events may follow its last one. */
  more: boolean;
  /** The last id given out when the page was read: every event up to it was visible to the read. */
  head: bigint;
  /** Events up to this id have been removed by retention. */
  prunedThrough: bigint;
}

export interface EventRetention {
  /** Events older than this are removed (default 30). */
  maxAgeDays: number;
  /** At most this many of the newest events are kept (default 1,000,000). */
  maxRows: number;
}

export const DEFAULT_EVENT_RETENTION: EventRetention = { maxAgeDays: 30, maxRows: 1_000_000 };

const COLUMNS = "id, replication_id, tenant_id, event_type, severity, message, details, created_at";
/**
 * About how many bytes of messages and details one page holds: a page of
 * large events is cut short, so that a reader's memory (the rows' text, then
 * the events made of them) is bounded by bytes, not only by a count.
 */
export const PAGE_BYTES = 2 ** 20;

export class EventStore {
  constructor(
    private readonly db: pg.Pool,
    readonly retention: EventRetention = DEFAULT_EVENT_RETENTION,
  ) {}

  async record(e: EventRecord): Promise<bigint> {
    return (await this.append([e]))[0]!;
  }

  /** Appends events in this order, in one statement; resolves their ids. */
  async append(events: EventRecord[]): Promise<bigint[]> {
    if (events.length === 0) return [];
    const { rows } = await this.db.query<{ id: string }>(
      `WITH head AS (UPDATE event_log SET last_id = last_id + $1 RETURNING last_id - $1 AS base)
       INSERT INTO events (id, replication_id, tenant_id, event_type, severity, message, details)
       SELECT head.base + e.n, nullif(e.replication_id, '')::uuid, e.tenant_id, e.event_type, e.severity, e.message, e.details::jsonb
         FROM head, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                    WITH ORDINALITY AS e(replication_id, tenant_id, event_type, severity, message, details, n)
       ORDER BY e.n RETURNING id::text`,
      [
        events.length,
        events.map((e) => e.replicationId),
        events.map((e) => e.tenantId),
        events.map((e) => e.type),
        events.map((e) => e.severity),
        events.map((e) => e.message),
        events.map((e) => JSON.stringify(stringDetails(e.details))),
      ],
    );
    return rows.map((r) => BigInt(r.id));
  }

  /**
   * The events after `after` that match, oldest first, at most `limit` and
   * about `maxBytes` (always at least one); with the log's head and retention
   * mark, from one snapshot.
   */
  async read(after: bigint, query: EventQuery, limit: number, maxBytes = PAGE_BYTES): Promise<EventPage> {
    // The running size is taken over the first `limit` matches only (the window runs after the LIMIT), and an
    // event is kept while the ones before it stay under the bound.
    const { rows } = await this.db.query(
      `SELECT h.last_id::text AS head, h.pruned_through::text AS pruned, e.*
         FROM event_log h LEFT JOIN LATERAL (
           SELECT * FROM (
             SELECT l.*, sum(l.size) OVER (ORDER BY l.id) AS upto FROM (
               SELECT ${COLUMNS}, octet_length(message) + octet_length(details::text) AS size FROM events
                WHERE id > $1 AND id <= h.last_id
                  AND ($2::uuid IS NULL OR replication_id = $2) AND ($3::text IS NULL OR tenant_id = $3)
                  AND (cardinality($4::text[]) = 0 OR severity = ANY($4)) AND (cardinality($5::text[]) = 0 OR event_type = ANY($5))
                ORDER BY id LIMIT $6) l) s
            WHERE s.upto - s.size < $7 ORDER BY s.id) e ON true`,
      [after.toString(), query.replicationId || null, query.tenantId ?? null, query.severities, query.types, limit, maxBytes],
    );
    const first = rows[0] as { head: string; pruned: string };
    const kept = rows.filter((r) => r.id !== null);
    const last = kept.at(-1) as { upto: string } | undefined;
    return {
      head: BigInt(first.head),
      prunedThrough: BigInt(first.pruned),
      events: kept.map(event),
      // Cut by count, or by bytes (the next match, if any, would have started at or past the bound).
      more: kept.length === limit || (last !== undefined && Number(last.upto) >= maxBytes),
    };
  }

  /** The last id given out, and the retention mark. */
  async head(): Promise<{ head: bigint; prunedThrough: bigint }> {
    const { rows } = await this.db.query<{ head: string; pruned: string }>("SELECT last_id::text AS head, pruned_through::text AS pruned FROM event_log");
    return { head: BigInt(rows[0]!.head), prunedThrough: BigInt(rows[0]!.pruned) };
  }

  /**
   * Removes the oldest events: those older than the retention's age, and
   * those beyond its number of rows. The mark moves first (a short update of
   * the counter row), then the rows go: a reader either sees the old mark
   * and every event, or the new mark.
   */
  async prune(): Promise<number> {
    const { rows } = await this.db.query<{ through: string }>(
      `UPDATE event_log SET pruned_through = greatest(pruned_through, last_id - $2,
         coalesce((SELECT max(id) FROM events WHERE created_at < now() - make_interval(days => $1)), 0))
       RETURNING pruned_through::text AS through`,
      [this.retention.maxAgeDays, this.retention.maxRows],
    );
    const { rowCount } = await this.db.query("DELETE FROM events WHERE id <= $1", [rows[0]!.through]);
    return rowCount ?? 0;
  }
}

// The contract's details are a map of strings.
function stringDetails(details: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined || value === null) continue;
    out[key] = typeof value === "string" ? value : typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return out;
}

function event(r: Record<string, unknown>): StoredEvent {
  return {
    id: BigInt(r.id as string),
    replicationId: (r.replication_id as string | null) ?? "",
    tenantId: r.tenant_id as string,
    type: r.event_type as string,
    severity: r.severity as string,
    message: r.message as string,
    details: stringDetails((r.details as Record<string, unknown>) ?? {}),
    at: r.created_at as Date,
  };
}
