// client.metrics: MetricsService — a replication's metric series (spec §2.5.1) and aggregates (§2.5.2).
import {
  MetricsService,
  type GetAggregatedMetricsRequest,
  type GetAggregatedMetricsResponse,
  type GetReplicationMetricsRequest,
  type GetReplicationMetricsResponse,
} from "@heliosdb/replication-proto";
import { Resource, type CallOptions, type Params } from "./resource";

export class Metrics extends Resource {
  /** GET /v1/replications/{replication_id}/metrics (GetReplicationMetrics): `startTime`/`endTime` as Dates, `resolution` "1m"… */
  get(replicationId: string, params: Omit<Params<GetReplicationMetricsRequest>, "replicationId"> = {}, options?: CallOptions): Promise<GetReplicationMetricsResponse> {
    return this.call(MetricsService.method.getReplicationMetrics, { ...params, replicationId }, options);
  }

  /** GET /v1/metrics/aggregate (GetAggregatedMetrics): by tenant_id, qos_tier or region. */
  aggregate(params: Params<GetAggregatedMetricsRequest> = {}, options?: CallOptions): Promise<GetAggregatedMetricsResponse> {
    return this.call(MetricsService.method.getAggregatedMetrics, params, options);
  }
}
