// MigrationService (spec §2.4): translates between messages and the
// migration controller. A migration's view is built from its stored record
// alone (the job's steps as its phases, each timed by the control plane's
// clock, with the figures each phase measured), so every server answers alike.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CancelMigrationResponseSchema,
  ListMigrationsResponseSchema,
  MigrationPhaseSchema,
  MigrationSchema,
  type Migration,
  type MigrationPhase,
  type MigrationService,
} from "@heliosdb/replication-proto";
import type { MigrationState } from "../controller/migration/deps";
import { currentPhase, migrationStatus, type MigrationController } from "../controller/migrations";
import type { MigrationRow } from "../store/tenant-migrations";
import { callerOf } from "./context";
import { pagination } from "./views";

export function migrationService(controller: MigrationController): ServiceImpl<typeof MigrationService> {
  return {
    async startMigration(req, ctx) {
      const row = await controller.start(callerOf(ctx), {
        tenantId: req.tenantId,
        sourceRegion: req.sourceRegion,
        targetRegion: req.targetRegion,
        config: req.config,
        targetConnectionId: req.targetConnectionId,
        targetDatabase: req.targetDatabase,
      });
      const view = migrationMessage(row);
      // Accepted and under way: a phase not yet begun on the server that runs it is the one that begins now.
      if (!row.job.steps.some((s) => s.status !== "Pending")) {
        view.currentPhase = view.phases[0]?.phase ?? "";
        view.phases = view.phases.map((p, i) => create(MigrationPhaseSchema, { ...p, status: i === 0 ? "InProgress" : "Pending" }));
      }
      return view;
    },

    async getMigrationStatus(req, ctx) {
      return migrationMessage(await controller.get(callerOf(ctx), req.migrationId));
    },

    async cancelMigration(req, ctx) {
      const row = await controller.cancel(callerOf(ctx), req.migrationId);
      return create(CancelMigrationResponseSchema, {
        id: row.id,
        status: "Cancelled",
        cancelledAt: timestampFromDate(row.job.cancelRequestedAt ?? new Date()),
        // Under way until the server that runs the migration has undone it.
        rollbackStatus: row.job.rollbackStatus ?? "InProgress",
      });
    },

    async cutoverMigration(req, ctx) {
      return migrationMessage(await controller.cutover(callerOf(ctx), req.migrationId));
    },

    async listMigrations(req, ctx) {
      const { rows, total, page, pageSize } = await controller.list(callerOf(ctx), {
        tenantId: req.tenantId,
        status: req.status,
        page: req.page,
        pageSize: req.pageSize,
      });
      return create(ListMigrationsResponseSchema, { migrations: rows.map(migrationMessage), pagination: pagination(page, pageSize, total) });
    },
  };
}

const GB = 1e9;
const gb = (bytes: number) => Math.round((bytes / GB) * 1e6) / 1e6;

/** A migration as §2.4.2 shows it. */
export function migrationMessage(m: MigrationRow): Migration {
  const { job } = m;
  const status = migrationStatus(job.status);
  const startedAt = job.startedAt ?? m.createdAt;
  const ended = status !== "InProgress" && job.completedAt;
  // A completed migration whose target was not verified equal to the source says so (the switch stands).
  const verification = (job.state as unknown as MigrationState).verification;
  return create(MigrationSchema, {
    id: m.id,
    tenantId: m.tenantId,
    sourceRegion: m.sourceRegion,
    targetRegion: m.targetRegion,
    status,
    currentPhase: currentPhase(m),
    startedAt: timestampFromDate(startedAt),
    ...(m.estimatedCompletion && status === "InProgress" ? { estimatedCompletion: timestampFromDate(m.estimatedCompletion) } : {}),
    ...(ended && status === "Completed" ? { completedAt: timestampFromDate(job.completedAt!) } : {}),
    ...(ended ? { totalDurationSeconds: Math.round((job.completedAt!.getTime() - startedAt.getTime()) / 1000) } : {}),
    downtimeMs: BigInt(m.downtimeMs ?? 0),
    dataTransferredGb: gb(m.dataTransferredBytes ?? 0),
    phases: job.steps.map((step): MigrationPhase => {
      const d = step.details as Record<string, unknown>;
      const num = (k: string) => (typeof d[k] === "number" ? (d[k] as number) : undefined);
      const seconds = step.durationMs !== null ? Math.round(step.durationMs / 1000) : step.startedAt ? Math.round((Date.now() - step.startedAt.getTime()) / 1000) : 0;
      const phase = create(MigrationPhaseSchema, {
        phase: step.step,
        status: phaseStatus(step.status, job.status, !!step.error),
        progressPercent: step.status === "Completed" ? 100 : (num("progress_percent") ?? 0),
        durationSeconds: seconds,
      });
      if (step.step === "BulkCopy") {
        if (num("estimated_data_size_gb") !== undefined) phase.estimatedDataSizeGb = num("estimated_data_size_gb");
        if (num("data_size_gb") !== undefined) phase.dataSizeGb = num("data_size_gb");
      }
      if (step.step === "CDCCatchup" && num("final_lag_seconds") !== undefined) phase.finalLagSeconds = num("final_lag_seconds");
      if (step.step === "Cutover" && step.durationMs !== null && step.status === "Completed") phase.durationMs = BigInt(step.durationMs);
      return phase;
    }),
    config: m.config,
    ...(job.status === "Cancelled" && job.cancelRequestedAt ? { cancelledAt: timestampFromDate(job.cancelRequestedAt) } : {}),
    rollbackStatus: job.rollbackStatus ?? "",
    message: status === "Failed" || status === "Cancelled" ? (job.error ?? "") : status === "Completed" && verification && !verification.ok ? verification.message : "",
    ...(m.source ? { source: m.source } : {}),
    ...(m.target ? { target: m.target } : {}),
  });
}

// The spec's phase statuses: Pending, InProgress, Completed, Failed (the phase that failed), Cancelled (a
// phase whose work a rollback undid, after a cancel or another phase's failure).
function phaseStatus(step: string, job: string, failed: boolean): string {
  if (step === "RolledBack") return failed && job !== "Cancelled" ? "Failed" : "Cancelled";
  if (step === "InProgress" && job === "Cancelled") return "Cancelled";
  if (step === "Skipped") return "Completed";
  return step;
}

