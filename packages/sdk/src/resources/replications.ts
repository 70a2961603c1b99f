// client.replications (spec §2.1, §2.2): ReplicationService's calls.
import type { DescMessage } from "@bufbuild/protobuf";
import {
  ReplicationConfigSchema,
  ReplicationService,
  type ReplicationEvent,
  type ReplicationMetrics,
  type StreamEventsRequest,
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
import { ResumableStream, type StreamOptions } from "../core/streams";
import { messageFrom } from "../internal/params";
import type { Transport } from "../internal/transport";
import { Resource, type CallOptions, type Params } from "./resource";

const M = ReplicationService.method;

export class Replications extends Resource {
  constructor(
    transport: Transport,
    private readonly streams: StreamOptions = {},
  ) {
    super(transport);
  }

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
    const updateMask = { paths: params.updateMask ?? maskOf(ReplicationConfigSchema, params.config) };
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

  /**
   * StreamReplicationMetrics: a sample every `intervalSeconds` (default 5),
   * the first at once; after a reconnect, a fresh sample. Ends with an error
   * (NotFoundError) when the replication is deleted.
   */
  streamMetrics(id: string, params: { intervalSeconds?: number } = {}): ResumableStream<ReplicationMetrics> {
    const request = messageFrom(M.streamReplicationMetrics.input, { replicationId: id, intervalSeconds: params.intervalSeconds ?? 0 });
    return new ResumableStream((signal) => this.transport.stream(M.streamReplicationMetrics, request, signal), this.streams);
  }

  /**
   * StreamReplicationEvents: the events that match `filters`, from `cursor`
   * (exclusive; none: from now on). After a reconnect it resumes after the
   * last event it delivered: each event exactly once.
   */
  streamEvents(filters: Params<StreamEventsRequest> = {}): ResumableStream<ReplicationEvent> {
    let cursor = filters.cursor ?? "";
    messageFrom(M.streamReplicationEvents.input, filters); // refuse bad filters now, not at the first read
    return new ResumableStream<ReplicationEvent>(
      (signal) => this.transport.stream(M.streamReplicationEvents, messageFrom(M.streamReplicationEvents.input, { ...filters, cursor }), signal),
      this.streams,
      (event) => void (cursor = event.cursor),
    );
  }
}

// The proto paths of the fields given, named by the descriptor (nested messages by their own fields, as the REST PATCH does).
function maskOf(schema: DescMessage, given: object, prefix = "config."): string[] {
  return Object.entries(given).flatMap(([key, value]) => {
    if (value === undefined) return [];
    const field = schema.fields.find((f) => f.localName === key);
    const path = prefix + (field?.name ?? key);
    const nested = field?.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.") && typeof value === "object" && value !== null && !("$typeName" in value);
    return nested ? maskOf(field.message, value, `${path}.`) : [path];
  });
}
