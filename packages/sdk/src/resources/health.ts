// client.health: HealthService — public: no credential needed.
import { HealthService, type HealthResponse, type ReadyResponse } from "@heliosdb/replication-proto";
import { Resource, type CallOptions } from "./resource";

export class Health extends Resource {
  /** GET /v1/health (Health). */
  check(options?: CallOptions): Promise<HealthResponse> {
    return this.call(HealthService.method.health, {}, options);
  }

  /** GET /v1/ready (Ready). */
  ready(options?: CallOptions): Promise<ReadyResponse> {
    return this.call(HealthService.method.ready, {}, options);
  }
}
