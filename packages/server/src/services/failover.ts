// FailoverService (spec §2.3): translates between messages and the failover
// controller. A failover's view is built from its stored record alone (the
// job's steps, each timed by the control plane's clock), so every server
// answers alike.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CheckpointSchema,
  FailoverLossWindowSchema,
  FailoverResponseSchema,
  FailoverStatusSchema,
  FailoverStepSchema,
  ListFailoverHistoryResponseSchema,
  type FailoverService,
  type FailoverStatus,
  type FailoverStep,
} from "@heliosdb/replication-proto";
import type { FailoverState } from "../controller/failover/deps";
import { stepMessage } from "../controller/failover/kind";
import { failoverStatus, type FailoverController } from "../controller/failovers";
import type { FailoverRow } from "../store/failovers";
import { callerOf } from "./context";
import { pagination } from "./views";

export function failoverService(controller: FailoverController): ServiceImpl<typeof FailoverService> {
  return {
    async triggerFailover(req, ctx) {
      const row = await controller.trigger(callerOf(ctx), {
        replicationId: req.replicationId,
        reason: req.reason,
        force: req.force,
        updateRouting: req.updateRouting,
        reverseReplication: req.reverseReplication,
      });
      const view = failoverMessage(row);
      // Accepted and under way: a step not yet begun on the server that runs it is the one that begins now.
      const begun = row.job.steps.some((s) => s.status !== "Pending");
      const steps = begun ? view.steps : view.steps.map((s, i) => create(FailoverStepSchema, { step: s.step, status: i === 0 ? "InProgress" : "Pending" }));
      return create(FailoverResponseSchema, {
        failoverId: row.id,
        replicationId: row.replicationId,
        status: view.status,
        startedAt: view.startedAt,
        estimatedDurationSeconds: row.estimatedDurationSeconds ?? 0,
        steps,
      });
    },

    async getFailoverStatus(req, ctx) {
      return failoverMessage(await controller.get(callerOf(ctx), req.failoverId));
    },

    async listFailoverHistory(req, ctx) {
      const { rows, total, page, pageSize } = await controller.list(callerOf(ctx), {
        replicationId: req.replicationId,
        status: req.status,
        page: req.page,
        pageSize: req.pageSize,
      });
      return create(ListFailoverHistoryResponseSchema, { failovers: rows.map(failoverMessage), pagination: pagination(page, pageSize, total) });
    },
  };
}

/** A failover as §2.3.2 shows it. */
export function failoverMessage(f: FailoverRow): FailoverStatus {
  const { job } = f;
  const s = job.state as unknown as FailoverState;
  const status = failoverStatus(job.status);
  const startedAt = job.startedAt ?? f.createdAt;
  const loss = s.lossWindow;
  return create(FailoverStatusSchema, {
    id: f.id,
    replicationId: f.replicationId,
    status,
    startedAt: timestampFromDate(startedAt),
    ...(job.completedAt && status !== "InProgress"
      ? { completedAt: timestampFromDate(job.completedAt), durationSeconds: Math.round((job.completedAt.getTime() - startedAt.getTime()) / 1000) }
      : {}),
    downtimeMs: BigInt(f.downtimeMs ?? 0),
    steps: job.steps.map(
      (step): FailoverStep =>
        create(FailoverStepSchema, { step: step.step, status: step.status, durationMs: BigInt(step.durationMs ?? 0), message: stepMessage(step) }),
    ),
    trigger: f.trigger,
    reason: f.reason,
    ...(f.oldPrimary ? { oldPrimary: f.oldPrimary } : {}),
    ...(f.newPrimary ? { newPrimary: f.newPrimary } : {}),
    message: status === "Failed" || status === "RolledBack" ? (job.error ?? "") : "",
    ...(loss
      ? {
          possibleDataLoss: create(FailoverLossWindowSchema, {
            lastApplied: create(CheckpointSchema, { lsn: BigInt(loss.lsn), timestamp: timestampFromDate(new Date(loss.timestamp)), transactionId: BigInt(loss.transactionId) }),
            sourceUnreachableSince: timestampFromDate(new Date(loss.sourceUnreachableSince)),
          }),
        }
      : {}),
    reverseReplicationId: s.reverseReplicationId ?? "",
  });
}
