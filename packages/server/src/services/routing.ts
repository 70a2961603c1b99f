// RoutingService: where a tenant's primary lives, as recorded at placement,
// failover and migration.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { TenantRoutingSchema, type RoutingService } from "@heliosdb/replication-proto";
import type { RoutingController } from "../controller/routing";
import { apiError } from "../transport/errors";
import { callerOf } from "./context";

export function routingService(controller: RoutingController): ServiceImpl<typeof RoutingService> {
  return {
    async getTenantRouting(req, ctx) {
      const r = await controller.get(callerOf(ctx), req.tenantId);
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
