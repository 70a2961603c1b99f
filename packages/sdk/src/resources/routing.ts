// client.routing: RoutingService — where a tenant's primary lives.
import { RoutingService, type TenantRouting } from "@heliosdb/replication-proto";
import type { ResumableStream, StreamOptions } from "../core/streams";
import type { Transport } from "../internal/transport";
import { routingWatch, type WatchOptions } from "../lib/watch-tenant-routing";
import { Resource, type CallOptions } from "./resource";

export class Routing extends Resource {
  constructor(
    transport: Transport,
    private readonly streams: StreamOptions = {},
  ) {
    super(transport);
  }

  /** GET /v1/tenants/{tenant_id}/routing (GetTenantRouting). */
  async get(tenantId: string, options?: CallOptions): Promise<TenantRouting> {
    return (await this.call(RoutingService.method.getTenantRouting, { tenantId }, options)).routing!;
  }

  /**
   * WatchTenantRouting: the routing now, then every change; resumed after a
   * dropped connection or a server restart without a version twice or going
   * back (lib/watch-tenant-routing.ts). Ends with a NotFoundError when the
   * tenant has no routing, or no longer.
   */
  watch(tenantId: string, options?: WatchOptions): ResumableStream<TenantRouting> {
    return routingWatch(this.transport, tenantId, this.streams, options);
  }
}
