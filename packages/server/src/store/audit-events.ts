// The audit log: every mutating call and every refused credential, written
// in batches — what arrives while a write is under way goes in the next one,
// so a flood of refused requests costs one INSERT per round trip, not one per
// request, and a lone event waits for no timer — and kept within bounds (an
// age and a number of rows).
import type pg from "pg";

export interface AuditEvent {
  principal: string;
  /** "jwt", "api_key", or "" when no credential was accepted. */
  credentialType: string;
  /** A token's jti (or a digest of it), an API key's id: never a secret. */
  credentialId: string;
  tenantId: string;
  /** "ReplicationService.CreateReplication". */
  rpc: string;
  /** The id the request names (a replication, a connection, a key), when it names one. */
  resource: string;
  /** "OK" or the §6 code of the answer. */
  outcome: string;
  message: string;
  requestId: string;
  clientAddress: string;
}

export interface AuditRow extends AuditEvent {
  id: string;
  at: Date;
}

export interface AuditFilter {
  tenantId?: string;
  principal?: string;
  rpc?: string;
  outcome?: string;
  since?: Date;
  until?: Date;
}

export interface AuditRetention {
  /** Events older than this are deleted (default 90 days). */
  maxAgeDays: number;
  /** At most this many events are kept, the newest (default 1,000,000). */
  maxRows: number;
}

const FIELDS: (keyof AuditEvent)[] = ["principal", "credentialType", "credentialId", "tenantId", "rpc", "resource", "outcome", "message", "requestId", "clientAddress"];
const COLUMNS = ["principal", "credential_type", "credential_id", "tenant_id", "rpc", "resource", "outcome", "message", "request_id", "client_address"];
/** Events waiting at most; past it new ones are dropped (and counted in the log), so a flood cannot exhaust memory. */
const MAX_PENDING = 10_000;
const PRUNE_EVERY_MS = 60_000;

export const DEFAULT_AUDIT_RETENTION: AuditRetention = { maxAgeDays: 90, maxRows: 1_000_000 };

export class AuditEventStore {
  private pending: AuditEvent[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  private waiters: { resolve: () => void }[] = [];
  private dropped = 0;
  private lastPrune = 0;

  constructor(
    private readonly db: pg.Pool,
    private readonly retention: AuditRetention = DEFAULT_AUDIT_RETENTION,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  /** Queues an event; resolves once it is written (or its write failed, which is logged). */
  record(event: AuditEvent): Promise<void> {
    if (this.pending.length >= MAX_PENDING) {
      if (this.dropped++ === 0) this.log("audit log: too many events waiting; dropping new ones until the backlog is written");
      return Promise.resolve();
    }
    this.pending.push(event);
    const written = new Promise<void>((resolve) => this.waiters.push({ resolve }));
    this.scheduled ??= setImmediate(() => void this.flush());
    return written;
  }

  /** Writes what is queued now. */
  async flush(): Promise<void> {
    clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (this.flushing) await this.flushing;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
      for (const w of waiters) w.resolve();
    });
    await this.flushing;
  }

  private async write(batch: AuditEvent[]): Promise<void> {
    try {
      // One INSERT for the batch: a column of values per field.
      const columns = FIELDS.map((f) => batch.map((e) => e[f]));
      await this.db.query(
        `INSERT INTO audit_events (${COLUMNS.join(", ")}) SELECT * FROM unnest(${COLUMNS.map((_, i) => `$${i + 1}::text[]`).join(", ")})`,
        columns,
      );
      if (this.dropped > 0) {
        this.log(`audit log: ${this.dropped} events were dropped while the backlog was full`);
        this.dropped = 0;
      }
      if (Date.now() - this.lastPrune >= PRUNE_EVERY_MS) {
        this.lastPrune = Date.now();
        await this.prune();
      }
    } catch (e) {
      this.log(`audit log: ${batch.length} events not written: ${(e as Error).message}`);
    }
  }

  /** Deletes events past the retention's age, and the oldest beyond its number of rows. */
  async prune(): Promise<number> {
    const { rowCount } = await this.db.query(
      `DELETE FROM audit_events WHERE at < now() - make_interval(days => $1)
          OR id <= (SELECT id FROM audit_events ORDER BY id DESC OFFSET $2 LIMIT 1)`,
      [this.retention.maxAgeDays, this.retention.maxRows],
    );
    return rowCount ?? 0;
  }

  /** A page of events, newest first. */
  async list(filter: AuditFilter, offset: number, limit: number): Promise<[AuditRow[], number]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace("?", `$${params.length}`));
    };
    if (filter.tenantId !== undefined) add("tenant_id = ?", filter.tenantId);
    if (filter.principal) add("principal = ?", filter.principal);
    if (filter.rpc) add("rpc = ?", filter.rpc);
    if (filter.outcome) add("outcome = ?", filter.outcome);
    if (filter.since) add("at >= ?", filter.since);
    if (filter.until) add("at < ?", filter.until);
    const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const total = await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events ${clause}`, params);
    const { rows } = await this.db.query(
      `SELECT id, at, ${COLUMNS.join(", ")} FROM audit_events ${clause} ORDER BY id DESC OFFSET $${params.length + 1} LIMIT $${params.length + 2}`,
      [...params, offset, limit],
    );
    return [
      rows.map((r) => ({
        id: String(r.id),
        at: r.at,
        ...(Object.fromEntries(FIELDS.map((f, i) => [f, r[COLUMNS[i]!]])) as unknown as AuditEvent),
      })),
      total.rows[0]!.n,
    ];
  }

  /** Writes what is queued. */
  async close(): Promise<void> {
    await this.flush();
  }
}
