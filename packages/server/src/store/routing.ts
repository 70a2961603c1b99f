// Routing: where a tenant's primary lives, as recorded at placement,
// failover and migration.
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ConnectionInfoSchema, type ConnectionInfo } from "@heliosdb/replication-proto";
import type pg from "pg";

export interface RoutingRow {
  tenantId: string;
  primary: ConnectionInfo;
  version: bigint;
  updatedAt: Date;
  writesBlocked: boolean;
  failoverId: string | null;
  migrationId: string | null;
}

export class RoutingStore {
  constructor(private readonly db: pg.Pool) {}

  async get(tenantId: string): Promise<RoutingRow | undefined> {
    const { rows } = await this.db.query("SELECT * FROM routing WHERE tenant_id = $1", [tenantId]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      tenantId: r.tenant_id,
      primary: fromJson(ConnectionInfoSchema, r.primary as JsonValue),
      version: BigInt(r.version),
      updatedAt: r.updated_at,
      writesBlocked: r.writes_blocked,
      failoverId: r.failover_id,
      migrationId: r.migration_id,
    };
  }
}
