// RoutingService: where a tenant's primary lives, as recorded at placement,
// failover and migration.
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ConnectionInfoSchema, TenantRoutingSchema, type RoutingService } from "@heliosdb/replication-proto";
import type pg from "pg";
import { checkTenant, principalKey } from "../transport/auth";
import { apiError } from "../transport/errors";

export function routingService(db: pg.Pool): ServiceImpl<typeof RoutingService> {
  return {
    async getTenantRouting(req, ctx) {
      checkTenant(ctx.values.get(principalKey), req.tenantId, `routing for tenant ${req.tenantId}`);
      const { rows } = await db.query("SELECT * FROM routing WHERE tenant_id = $1", [req.tenantId]);
      const r = rows[0];
      if (!r) throw apiError("NOT_FOUND", `no routing recorded for tenant ${req.tenantId}`, { tenant_id: req.tenantId });
      return {
        routing: create(TenantRoutingSchema, {
          tenantId: r.tenant_id,
          primary: fromJson(ConnectionInfoSchema, r.primary as JsonValue),
          version: BigInt(r.version),
          updatedAt: timestampFromDate(r.updated_at),
          writesBlocked: r.writes_blocked,
          failoverId: r.failover_id ?? "",
          migrationId: r.migration_id ?? "",
        }),
      };
    },
    // eslint-disable-next-line require-yield
    async *watchTenantRouting() {
      throw apiError("UNIMPLEMENTED", "routing watches arrive with the streaming milestone; poll GET /v1/tenants/{tenant_id}/routing meanwhile");
    },
  };
}
