// RoutingService: where a tenant's primary lives, as recorded at placement,
// failover and migration.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { TenantRoutingSchema, type RoutingService } from "@heliosdb/replication-proto";
import type { RoutingStore } from "../store/routing";
import { checkTenant, principalKey } from "../transport/auth";
import { apiError } from "../transport/errors";

export function routingService(routing: RoutingStore): ServiceImpl<typeof RoutingService> {
  return {
    async getTenantRouting(req, ctx) {
      checkTenant(ctx.values.get(principalKey), req.tenantId, `routing for tenant ${req.tenantId}`);
      const r = await routing.get(req.tenantId);
      if (!r) throw apiError("NOT_FOUND", `no routing recorded for tenant ${req.tenantId}`, { tenant_id: req.tenantId });
      return {
        routing: create(TenantRoutingSchema, {
          tenantId: r.tenantId,
          primary: r.primary,
          version: r.version,
          updatedAt: timestampFromDate(r.updatedAt),
          writesBlocked: r.writesBlocked,
          failoverId: r.failoverId ?? "",
          migrationId: r.migrationId ?? "",
        }),
      };
    },
    // eslint-disable-next-line require-yield
    async *watchTenantRouting() {
      throw apiError("UNIMPLEMENTED", "routing watches arrive with the streaming milestone; poll GET /v1/tenants/{tenant_id}/routing meanwhile");
    },
  };
}
