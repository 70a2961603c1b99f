// ReplicationService: translates between messages and the controller, and
// hands the controller the caller. No rules of its own.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ListReplicationsResponseSchema,
  PauseReplicationResponseSchema,
  QoSTier,
  ReplicationEventSchema,
  ReplicationMetricsSchema,
  type Replication,
  type ReplicationMetrics,
  type ReplicationEvent,
  ReplicationService,
  ReplicationStatus,
  SortOrder,
  StartReplicationResponseSchema,
  StopReplicationResponseSchema,
} from "@heliosdb/replication-proto";
import type { EventFeed, FeedEvent } from "../controller/event-feed";
import type { MetricFeed, MetricSample } from "../controller/metric-feed";
import type { ReplicationController } from "../controller/replications";
import type { Orchestrator } from "../orchestrator/orchestrator";
import type { ReplicationRow } from "../store/replications";
import { apiError } from "../transport/errors";
import { arrivalKey, callerOf, streamOpened } from "./context";
import { oncePerObject } from "./once-per-object";
import { checkpointOf, observedState, pagination, replicationMessage, shared, statusOf } from "./views";

export interface Feeds {
  events: EventFeed;
  metrics: MetricFeed;
}

export function replicationService(controller: ReplicationController, orchestrator: Orchestrator, feeds: Feeds): ServiceImpl<typeof ReplicationService> {
  // Status, health and figures by one rule from the stored row, on every server.
  const state = (row: ReplicationRow) => observedState(row, orchestrator.staleAfterMs);
  // What GET answered for a row the cache holds: answered again while the row and its health are the same.
  const shown = new WeakMap<ReplicationRow, { health: string; message: Replication }>();

  return {
    async createReplication(req, ctx) {
      const row = await controller.create(callerOf(ctx), req);
      return replicationMessage(row, state(row), "created");
    },

    async getReplication(req, ctx) {
      const row = await controller.get(callerOf(ctx), req.id, { cached: true, arrived: ctx.values.get(arrivalKey) });
      // One message per stored row and health (health alone changes with time: live figures go stale).
      const observed = state(row);
      const kept = shown.get(row);
      if (kept?.health === observed.health) return kept.message;
      const message = shared(replicationMessage(row, observed));
      shown.set(row, { health: observed.health, message });
      return message;
    },

    async listReplications(req, ctx) {
      const { rows, total, page, pageSize } = await controller.list(callerOf(ctx), {
        tenantId: req.tenantId,
        ...(req.status !== undefined ? { status: statusName(req.status) } : {}),
        ...(req.qosTier !== undefined ? { qosTier: QoSTier[req.qosTier] } : {}),
        sortBy: req.sortBy,
        descending: req.sortOrder !== SortOrder.ASC,
        page: req.page,
        pageSize: req.pageSize,
      });
      return create(ListReplicationsResponseSchema, {
        replications: rows.map((row) => replicationMessage(row, state(row), "list")),
        pagination: pagination(page, pageSize, total),
      });
    },

    async updateReplication(req, ctx) {
      const row = await controller.update(callerOf(ctx), req.id, req.config, req.updateMask?.paths ?? []);
      return replicationMessage(row, state(row));
    },

    async deleteReplication(req, ctx) {
      await controller.delete(callerOf(ctx), req.id, req.cleanupTarget);
      return {};
    },

    async startReplication(req, ctx) {
      const { row, plan, before } = await controller.start(callerOf(ctx), req.id, {
        fromCheckpoint: req.fromCheckpoint,
        initialSyncParallelism: req.initialSyncParallelism,
      });
      const status = statusOf(state(row).status);
      const hours = row.estimatedInitialSyncDurationHours;
      // Only a start that copies the data has an initial sync to estimate (spec §2.2.1).
      const message = {
        initial_sync: "Replication starting. Initial sync in progress.",
        checkpoint: `Replication resuming from its checkpoint (LSN ${before.figures?.lastCheckpoint?.lsn}).`,
        position: `Replication starting from LSN ${req.fromCheckpoint}.`,
        unchanged: `Replication ${statusName(status).toLowerCase()}.`,
      }[plan];
      return create(StartReplicationResponseSchema, {
        id: row.id,
        status,
        message,
        ...(plan === "initial_sync" && hours !== null ? { estimatedCompletion: timestampFromDate(new Date(Date.now() + hours * 3_600_000)) } : {}),
      });
    },

    async pauseReplication(req, ctx) {
      const row = await controller.control(callerOf(ctx), req.id, "pause");
      // Stored by the pipeline's owner as it paused it (on this server, during the request), and never lost to a later observation without one.
      const checkpoint = checkpointOf(state(row).figures);
      return create(PauseReplicationResponseSchema, {
        id: row.id,
        status: ReplicationStatus.PAUSED,
        pausedAt: timestampFromDate(row.updatedAt),
        ...(checkpoint ? { lastCheckpoint: checkpoint } : {}),
      });
    },

    async stopReplication(req, ctx) {
      const row = await controller.control(callerOf(ctx), req.id, "stop");
      const view = replicationMessage(row, state(row));
      return create(StopReplicationResponseSchema, {
        id: row.id,
        status: ReplicationStatus.STOPPED,
        stoppedAt: timestampFromDate(row.updatedAt),
        finalStatistics: view.statistics!,
      });
    },

    // The feeds (controller/) hold the logic; the WebSocket gateway subscribes to the same ones.
    async *streamReplicationMetrics(req, ctx) {
      const samples = await feeds.metrics.subscribe(callerOf(ctx), { replicationId: req.replicationId, intervalSeconds: req.intervalSeconds }, ctx.signal);
      streamOpened(ctx);
      for await (const s of samples) yield metricsMessage(s);
    },

    async *streamReplicationEvents(req, ctx) {
      const events = await feeds.events.subscribe(
        callerOf(ctx),
        { replicationId: req.replicationId, tenantId: req.tenantId, severities: req.severities, eventTypes: req.eventTypes, cursor: req.cursor },
        ctx.signal,
      );
      streamOpened(ctx);
      for await (const e of events) yield eventMessage(e);
    },
  };
}

// cpu_usage_percent and memory_usage_bytes stay unset: pipelines share one process, and nothing measures one pipeline's share honestly.
const metricsMessage = oncePerObject((s: MetricSample): ReplicationMetrics =>
  create(ReplicationMetricsSchema, {
    replicationId: s.replicationId,
    timestamp: timestampFromDate(s.at),
    replicationLagSeconds: s.lagSeconds,
    replicationLagBytes: BigInt(Math.round(s.lagBytes)),
    rowsPerSecond: s.rowsPerSecond,
    bytesPerSecond: BigInt(Math.round(s.bytesPerSecond)),
    compressionRatio: s.compressionRatio,
  }),
);

const eventMessage = oncePerObject((e: FeedEvent): ReplicationEvent =>
  create(ReplicationEventSchema, {
    replicationId: e.replicationId,
    tenantId: e.tenantId,
    timestamp: timestampFromDate(e.at),
    eventType: e.type,
    severity: e.severity,
    message: e.message,
    details: e.details,
    cursor: e.cursor,
  }),
);

function statusName(status: ReplicationStatus): string {
  const name = ReplicationStatus[status];
  return name.charAt(0) + name.slice(1).toLowerCase();
}
