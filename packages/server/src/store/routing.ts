// Routing: where a tenant's primary lives, as recorded at failover and
// migration (the demo seeds it). Every committed change is announced on
// ROUTING_CHANNEL with the row it leaves (migration 11), for the watches.
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ConnectionInfoSchema, type ConnectionInfo } from "@heliosdb/replication-proto";
import type pg from "pg";

export const ROUTING_CHANNEL = "heliosdb_routing";

export interface RoutingRow {
  tenantId: string;
  primary: ConnectionInfo;
  version: bigint;
  updatedAt: Date;
  writesBlocked: boolean;
  failoverId: string | null;
  migrationId: string | null;
  /** While a cutover is prepared: the primary it will switch to (clients may connect there ahead of the switch). */
  nextPrimary: ConnectionInfo | null;
}

/** What a notification on ROUTING_CHANNEL says of one tenant. */
export interface RoutingNotice {
  tenantId: string;
  /** The row as the change left it; null when deleted; undefined when too large to say (read it). */
  row: RoutingRow | null | undefined;
}

/** The job on whose behalf routing changes, and the lease it runs under: a server that lost the lease changes nothing. */
export interface RoutingChanger {
  jobId: string;
  owner: string;
  epoch: number;
  /** Which kind of job changes it: the row names it as `failover_id` (default) or `migration_id`. */
  kind?: "failover" | "migration";
}

// The columns naming the job that last changed the row: the changer's, and the other one cleared.
const namedBy = (c: RoutingChanger) => (c.kind === "migration" ? "failover_id = NULL, migration_id = $3" : "failover_id = $3, migration_id = NULL");

// The change is made only while the job is open and `changer` holds its lease.
const HELD = "EXISTS (SELECT 1 FROM jobs WHERE id = $3 AND lease_owner = $4 AND lease_epoch = $5 AND status IN ('Pending', 'InProgress'))";

export class RoutingStore {
  constructor(private readonly db: pg.Pool) {}

  async get(tenantId: string): Promise<RoutingRow | undefined> {
    const { rows } = await this.db.query("SELECT * FROM routing WHERE tenant_id = $1", [tenantId]);
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /**
   * The switch: in one statement (one transaction), the tenant's routing
   * names `primary`, its version moves by one (a tenant without routing gets
   * its first, version 1), writes are unblocked, and the job (a failover or a
   * migration, `changer.kind`) is named as the one that last changed it. Watchers hear the row at commit (migration
   * 11). Undefined when `changer` no longer holds the failover's lease:
   * nothing changed.
   */
  async switchPrimary(tenantId: string, primary: ConnectionInfo, jobId: string, changer: RoutingChanger): Promise<RoutingRow | undefined> {
    const { rows } = await this.db.query(
      `INSERT INTO routing AS r (tenant_id, "primary", version, writes_blocked, failover_id, migration_id, updated_at)
       SELECT $1, $2::jsonb, 1, false, ${changer.kind === "migration" ? "NULL, $3::uuid" : "$3::uuid, NULL"}, now() WHERE ${HELD}
       ON CONFLICT (tenant_id) DO UPDATE SET "primary" = EXCLUDED."primary", version = r.version + 1, writes_blocked = false,
              next_primary = NULL, ${namedBy(changer)}, updated_at = now()
       RETURNING *`,
      [tenantId, infoJson(primary), jobId, changer.owner, changer.epoch],
    );
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /**
   * Marks the tenant's writes blocked (or not) while its routing still names
   * `primary` at version `version`, naming the failover; the version moves so
   * that watchers hear it. Unblocked, the cutover gave up: its next primary
   * is cleared too. Undefined when the routing changed meanwhile, is
   * already so, or `changer` lost the lease.
   */
  async setWritesBlocked(tenantId: string, version: bigint, blocked: boolean, jobId: string, changer: RoutingChanger): Promise<RoutingRow | undefined> {
    const { rows } = await this.db.query(
      `UPDATE routing SET writes_blocked = $6, version = version + 1, ${namedBy(changer)}, updated_at = now()${blocked ? "" : ", next_primary = NULL"}
        WHERE tenant_id = $1 AND version = $2 AND writes_blocked <> $6 AND ${HELD}
        RETURNING *`,
      [tenantId, version.toString(), jobId, changer.owner, changer.epoch, blocked],
    );
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /**
   * Announces the primary a cutover being prepared will switch to (or, with
   * null, that it will not), at version `version`; the version moves so that
   * watchers hear it. Undefined when the routing changed meanwhile, already
   * says so, or `changer` lost the lease.
   */
  async setNextPrimary(tenantId: string, version: bigint, next: ConnectionInfo | null, jobId: string, changer: RoutingChanger): Promise<RoutingRow | undefined> {
    const { rows } = await this.db.query(
      `UPDATE routing SET next_primary = $6::jsonb, version = version + 1, ${namedBy(changer)}, updated_at = now()
        WHERE tenant_id = $1 AND version = $2 AND next_primary IS DISTINCT FROM $6::jsonb AND ${HELD}
        RETURNING *`,
      [tenantId, version.toString(), jobId, changer.owner, changer.epoch, next ? infoJson(next) : null],
    );
    return rows[0] ? rowOf(rows[0]) : undefined;
  }
}

/** Whether two primaries are the same database and schema (a region or an unset schema aside). */
export function samePrimary(a: ConnectionInfo, b: ConnectionInfo): boolean {
  return a.connectionId === b.connectionId && a.database === b.database && (a.schema || "public") === (b.schema || "public");
}

const infoJson = (v: ConnectionInfo) => JSON.stringify(toJson(ConnectionInfoSchema, v, { alwaysEmitImplicit: true }));

/** A notification's payload; undefined for "*" (any tenant's routing may have changed: read again). */
export function routingNotice(payload: string): RoutingNotice | undefined {
  if (payload === "*") return undefined;
  let notice: { tenant_id?: unknown; row?: Record<string, unknown> | null };
  try {
    notice = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof notice?.tenant_id !== "string") return undefined;
  if (notice.row === null) return { tenantId: notice.tenant_id, row: null };
  try {
    return { tenantId: notice.tenant_id, row: notice.row === undefined ? undefined : rowOf(notice.row) };
  } catch {
    // A row written by hand that GET could not read either: the watchers read it, and fail as GET does.
    return { tenantId: notice.tenant_id, row: undefined };
  }
}

// A row as pg reads it, or as the trigger writes it in JSON (version as text, updated_at as ISO text).
function rowOf(r: Record<string, unknown>): RoutingRow {
  return {
    tenantId: r.tenant_id as string,
    primary: fromJson(ConnectionInfoSchema, r.primary as JsonValue),
    version: BigInt(r.version as string),
    updatedAt: new Date(r.updated_at as string | Date),
    writesBlocked: r.writes_blocked as boolean,
    failoverId: (r.failover_id as string | null) ?? null,
    migrationId: (r.migration_id as string | null) ?? null,
    nextPrimary: r.next_primary ? fromJson(ConnectionInfoSchema, r.next_primary as JsonValue) : null,
  };
}
