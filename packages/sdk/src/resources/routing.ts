// client.routing: RoutingService — where a tenant's primary lives.
import { RoutingService, type TenantRouting } from "@heliosdb/replication-proto";
import { Resource, type CallOptions } from "./resource";

export class Routing extends Resource {
  /** GET /v1/tenants/{tenant_id}/routing (GetTenantRouting). */
  async get(tenantId: string, options?: CallOptions): Promise<TenantRouting> {
    return (await this.call(RoutingService.method.getTenantRouting, { tenantId }, options)).routing!;
  }
}
