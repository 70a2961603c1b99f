// RoutingService: where a tenant's primary lives, as recorded at failover and
// migration — read once, or watched.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { TenantRoutingSchema, type RoutingService, type TenantRouting } from "@heliosdb/replication-proto";
import type { RoutingController } from "../controller/routing";
import type { RoutingRow } from "../store/routing";
import { callerOf, streamOpened } from "./context";
import { oncePerObject } from "./once-per-object";

export function routingService(controller: RoutingController): ServiceImpl<typeof RoutingService> {
  return {
    async getTenantRouting(req, ctx) {
      return { routing: routingMessage(await controller.get(callerOf(ctx), req.tenantId)) };
    },

    // The feed (controller/routing-feed.ts) holds the logic: the current routing first, then each change.
    async *watchTenantRouting(req, ctx) {
      const changes = await controller.watch(callerOf(ctx), req.tenantId, ctx.signal);
      streamOpened(ctx);
      for await (const row of changes) yield { routing: routingMessage(row) };
    },
  };
}

const routingMessage = oncePerObject(
  (r: RoutingRow): TenantRouting =>
    create(TenantRoutingSchema, {
      tenantId: r.tenantId,
      primary: r.primary,
      version: r.version,
      updatedAt: timestampFromDate(r.updatedAt),
      writesBlocked: r.writesBlocked,
      failoverId: r.failoverId ?? "",
      migrationId: r.migrationId ?? "",
      ...(r.nextPrimary ? { nextPrimary: r.nextPrimary } : {}),
    }),
);
