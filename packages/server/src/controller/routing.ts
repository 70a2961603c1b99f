// Where a tenant's primary lives: a tenant-bound caller reads only its own
// tenant's routing.
import type { RoutingRow, RoutingStore } from "../store/routing";
import { apiError } from "../transport/errors";
import { checkTenant, type Caller } from "./caller";

export class RoutingController {
  constructor(private readonly routing: RoutingStore) {}

  async get(caller: Caller | undefined, tenantId: string): Promise<RoutingRow> {
    checkTenant(caller, tenantId, `routing for tenant ${tenantId}`);
    const row = await this.routing.get(tenantId);
    if (!row) throw apiError("NOT_FOUND", `no routing recorded for tenant ${tenantId}`, { tenant_id: tenantId });
    return row;
  }
}
