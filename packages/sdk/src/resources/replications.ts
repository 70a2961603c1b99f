// client.replications (spec §2.1, §2.2): ReplicationService's calls.
import {
  ReplicationService,
  type CreateReplicationRequest,
  type ListReplicationsRequest,
  type PauseReplicationResponse,
  type Replication,
  type ReplicationConfig,
  type StartReplicationRequest,
  type StartReplicationResponse,
  type StopReplicationResponse,
} from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

const M = ReplicationService.method;

export class Replications extends Resource {
  /** POST /v1/replications (CreateReplication). */
  create(params: Params<CreateReplicationRequest>, options?: CallOptions): Promise<Replication> {
    return this.call(M.createReplication, params, options);
  }

  /** GET /v1/replications/{id} (GetReplication). */
  get(id: string, options?: CallOptions): Promise<Replication> {
    return this.call(M.getReplication, { id }, options);
  }

  /** GET /v1/replications (ListReplications): await it for the first page, `for await` it for every replication. */
  list(params: Params<ListReplicationsRequest> = {}, options?: CallOptions): PagePromise<Replication> {
    return this.paged(M.listReplications, params, options);
  }

  /**
   * PATCH /v1/replications/{id} (UpdateReplication): changes the fields of
   * `config` given (or those `updateMask` names), leaving the others.
   */
  update(id: string, params: { config: Params<ReplicationConfig>; updateMask?: string[] }, options?: CallOptions): Promise<Replication> {
    const updateMask = { paths: params.updateMask ?? maskOf(params.config) };
    return this.call(M.updateReplication, { id, config: params.config, updateMask }, options);
  }

  /** DELETE /v1/replications/{id} (DeleteReplication). */
  async delete(id: string, params: { cleanupTarget?: boolean } = {}, options?: CallOptions): Promise<void> {
    await this.call(M.deleteReplication, { id, ...params }, options);
  }

  /** POST /v1/replications/{id}/start (StartReplication). */
  start(id: string, params: Omit<Params<StartReplicationRequest>, "id"> = {}, options?: CallOptions): Promise<StartReplicationResponse> {
    return this.call(M.startReplication, { ...params, id }, options);
  }

  /** POST /v1/replications/{id}/pause (PauseReplication). */
  pause(id: string, options?: CallOptions): Promise<PauseReplicationResponse> {
    return this.call(M.pauseReplication, { id }, options);
  }

  /** POST /v1/replications/{id}/stop (StopReplication). */
  stop(id: string, options?: CallOptions): Promise<StopReplicationResponse> {
    return this.call(M.stopReplication, { id }, options);
  }
}

// The proto paths of the fields given (nested messages by their own fields, as the REST PATCH does).
function maskOf(config: object, prefix = "config."): string[] {
  return Object.entries(config).flatMap(([key, value]) => {
    const path = prefix + key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (value === undefined) return [];
    return value && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date) && !("$typeName" in value) ? maskOf(value, `${path}.`) : [path];
  });
}
