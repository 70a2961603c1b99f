// client.failovers: FailoverService (spec §2.3): trigger a failover, follow it step by step, list the history.
import { FailoverService, type FailoverResponse, type FailoverStatus, type ListFailoverHistoryRequest, type TriggerFailoverRequest } from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

const M = FailoverService.method;

export class Failovers extends Resource {
  /** POST /v1/replications/{replication_id}/failover (TriggerFailover). */
  trigger(replicationId: string, params: Omit<Params<TriggerFailoverRequest>, "replicationId"> = {}, options?: CallOptions): Promise<FailoverResponse> {
    return this.call(M.triggerFailover, { ...params, replicationId }, options);
  }

  /** GET /v1/failovers/{failover_id} (GetFailoverStatus). */
  get(failoverId: string, options?: CallOptions): Promise<FailoverStatus> {
    return this.call(M.getFailoverStatus, { failoverId }, options);
  }

  /** GET /v1/failovers (ListFailoverHistory). */
  list(params: Params<ListFailoverHistoryRequest> = {}, options?: CallOptions): PagePromise<FailoverStatus> {
    return this.paged(M.listFailoverHistory, params, options);
  }
}
