// ReplicationService: translates between messages and the controller, and
// keeps tenant-bound callers to their tenant. No rules of its own.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  ListReplicationsResponseSchema,
  PauseReplicationResponseSchema,
  QoSTier,
  ReplicationService,
  ReplicationStatus,
  SortOrder,
  StartReplicationResponseSchema,
  StopReplicationResponseSchema,
} from "@heliosdb/replication-proto";
import type { ReplicationController } from "../controller/replications";
import { requireUuid } from "../controller/violations";
import type { Orchestrator } from "../orchestrator/orchestrator";
import { SORT_FIELDS, type ReplicationRow } from "../store/replications";
import { checkTenant, principalKey } from "../transport/auth";
import { apiError } from "../transport/errors";
import { checkpointOf, observedState, pagination, paging, replicationMessage, statusOf } from "./views";

export function replicationService(controller: ReplicationController, orchestrator: Orchestrator): ServiceImpl<typeof ReplicationService> {
  // Loads a replication the caller may see: a tenant-bound token sees only its tenant's.
  const load = async (id: string, ctx: HandlerContext, cached = false): Promise<ReplicationRow> => {
    requireUuid("id", id);
    const row = await controller.get(id, { cached });
    checkTenant(ctx.values.get(principalKey), row.tenantId, `replication ${id}`);
    return row;
  };
  // Status, health and figures by one rule from the stored row, on every server.
  const state = (row: ReplicationRow) => observedState(row, orchestrator.staleAfterMs);

  return {
    async createReplication(req, ctx) {
      const principal = ctx.values.get(principalKey);
      if (principal?.tenantId && req.tenantId !== principal.tenantId) {
        throw apiError("FORBIDDEN", `this token may only act for tenant ${principal.tenantId}`, { tenant_id: req.tenantId });
      }
      const row = await controller.create(req);
      return replicationMessage(row, state(row), "created");
    },

    async getReplication(req, ctx) {
      const row = await load(req.id, ctx, true);
      return replicationMessage(row, state(row));
    },

    async listReplications(req, ctx) {
      const { page, pageSize } = paging(req.page, req.pageSize);
      const principal = ctx.values.get(principalKey);
      if (principal?.tenantId && req.tenantId && req.tenantId !== principal.tenantId) {
        throw apiError("FORBIDDEN", `this token may only list tenant ${principal.tenantId}`, { tenant_id: req.tenantId });
      }
      const sortBy = req.sortBy || "created_at";
      if (!SORT_FIELDS.includes(sortBy)) {
        throw apiError("INVALID_REQUEST", `cannot sort by "${sortBy}"`, { violations: [{ field: "sort_by", description: `one of ${SORT_FIELDS.join(", ")}` }] });
      }
      const tenantId = principal?.tenantId ?? (req.tenantId || undefined);
      const [rows, total] = await controller.list(
        {
          ...(tenantId ? { tenantId } : {}),
          ...(req.status !== undefined ? { status: statusName(req.status) } : {}),
          ...(req.qosTier !== undefined ? { qosTier: QoSTier[req.qosTier] } : {}),
        },
        sortBy,
        req.sortOrder !== SortOrder.ASC,
        page,
        pageSize,
      );
      return create(ListReplicationsResponseSchema, {
        replications: rows.map((row) => replicationMessage(row, state(row), "list")),
        pagination: pagination(page, pageSize, total),
      });
    },

    async updateReplication(req, ctx) {
      await load(req.id, ctx);
      const paths = (req.updateMask?.paths ?? []).map((p) => p.replace(/^config\./, ""));
      if (paths.length === 0 || paths.some((p) => p === "config")) {
        throw apiError("INVALID_REQUEST", "name the fields to change (a PATCH body holds only them)", {
          violations: [{ field: "update_mask", description: "no config fields to change" }],
        });
      }
      const row = await controller.update(req.id, req.config!, paths);
      return replicationMessage(row, state(row));
    },

    async deleteReplication(req, ctx) {
      await load(req.id, ctx);
      await controller.delete(req.id, req.cleanupTarget);
      return {};
    },

    async startReplication(req, ctx) {
      await load(req.id, ctx);
      if (req.initialSyncParallelism < 0 || req.initialSyncParallelism > 64) {
        throw apiError("VALIDATION_ERROR", "initial_sync_parallelism must be from 1 to 64", { field: "initial_sync_parallelism" });
      }
      const fromCheckpoint = req.fromCheckpoint || "auto";
      if (fromCheckpoint !== "auto" && !/^(\d+|[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})$/.test(fromCheckpoint)) {
        throw apiError("VALIDATION_ERROR", 'from_checkpoint must be "auto" or an LSN (decimal or X/Y)', { field: "from_checkpoint" });
      }
      const { row, plan, before } = await controller.start(req.id, {
        fromCheckpoint,
        ...(req.initialSyncParallelism ? { initialSyncParallelism: req.initialSyncParallelism } : {}),
      });
      const status = statusOf(state(row).status);
      const hours = row.estimatedInitialSyncDurationHours;
      // Only a start that copies the data has an initial sync to estimate (spec §2.2.1).
      const message = {
        initial_sync: "Replication starting. Initial sync in progress.",
        checkpoint: `Replication resuming from its checkpoint (LSN ${before.figures?.lastCheckpoint?.lsn}).`,
        position: `Replication starting from LSN ${fromCheckpoint}.`,
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
      await load(req.id, ctx);
      const row = await controller.control(req.id, "pause");
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
      await load(req.id, ctx);
      const row = await controller.control(req.id, "stop");
      const view = replicationMessage(row, state(row));
      return create(StopReplicationResponseSchema, {
        id: row.id,
        status: ReplicationStatus.STOPPED,
        stoppedAt: timestampFromDate(row.updatedAt),
        finalStatistics: view.statistics!,
      });
    },

    // eslint-disable-next-line require-yield
    async *streamReplicationMetrics() {
      throw apiError("UNIMPLEMENTED", "metric streams arrive with the streaming milestone; use GET /v1/replications/{id} meanwhile");
    },

    // eslint-disable-next-line require-yield
    async *streamReplicationEvents() {
      throw apiError("UNIMPLEMENTED", "event streams arrive with the streaming milestone");
    },
  };
}

function statusName(status: ReplicationStatus): string {
  const name = ReplicationStatus[status];
  return name.charAt(0) + name.slice(1).toLowerCase();
}
