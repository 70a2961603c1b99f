// Routing: where a tenant's primary lives, as recorded at failover and
// migration (the demo seeds it). Every committed change is announced on
// ROUTING_CHANNEL with the row it leaves (migration 11), for the watches.
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
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
}

/** What a notification on ROUTING_CHANNEL says of one tenant. */
export interface RoutingNotice {
  tenantId: string;
  /** The row as the change left it; null when deleted; undefined when too large to say (read it). */
  row: RoutingRow | null | undefined;
}

export class RoutingStore {
  constructor(private readonly db: pg.Pool) {}

  async get(tenantId: string): Promise<RoutingRow | undefined> {
    const { rows } = await this.db.query("SELECT * FROM routing WHERE tenant_id = $1", [tenantId]);
    return rows[0] ? rowOf(rows[0]) : undefined;
  }
}

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
  };
}
