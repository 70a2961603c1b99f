// Where a tenant's primary lives: a tenant-bound caller reads, and watches,
// only its own tenant's routing.
import type { RoutingRow, RoutingStore } from "../store/routing";
import { apiError } from "../transport/errors";
import { checkTenant, type Caller } from "./caller";
import type { RoutingFeed } from "./routing-feed";

export class RoutingController {
  constructor(
    private readonly routing: RoutingStore,
    private readonly feed: RoutingFeed,
  ) {}

  async get(caller: Caller | undefined, tenantId: string): Promise<RoutingRow> {
    checkTenant(caller, tenantId, `routing for tenant ${tenantId}`);
    const row = await this.routing.get(tenantId);
    if (!row) throw noRouting(tenantId);
    return row;
  }

  /** The caller checked as `get` checks it, then the routing now and each change until `signal` aborts (controller/routing-feed.ts). */
  async watch(caller: Caller | undefined, tenantId: string, signal: AbortSignal): Promise<AsyncIterable<RoutingRow>> {
    checkTenant(caller, tenantId, `routing for tenant ${tenantId}`);
    return this.feed.subscribe(tenantId, signal);
  }
}

/** No routing recorded for the tenant (or no longer): what GET and a watch answer alike. */
export function noRouting(tenantId: string) {
  return apiError("NOT_FOUND", `no routing recorded for tenant ${tenantId}`, { tenant_id: tenantId });
}
