// The migration kind of leased job (spec §2.4): its three phases as steps,
// and the events a subscriber of the tenant (or of the migration's carrier
// replication) sees as it runs — each phase's start and end, the rollback of
// each, and how the migration ended (MigrationCompleted, MigrationFailed,
// MigrationCancelled). BulkCopy and CDCCatchup also say their progress
// (MigrationProgress). Every phase is re-runnable: a migration whose server
// dies in any phase is resumed by the server that takes its lease next
// (docs/migration.md).
import type { JobChange, JobKind } from "../../orchestrator/job-kind";
import type { JobRow } from "../../store/jobs";
import { MIGRATION_KIND } from "../../store/tenant-migrations";
import { bulkCopy } from "./bulk-copy";
import { cdcCatchup } from "./catchup";
import { cutover } from "./cutover";
import type { MigrationDeps, MigrationState } from "./deps";

export const MIGRATION_PHASES = ["BulkCopy", "CDCCatchup", "Cutover"] as const;

export function migrationKind(deps: MigrationDeps): JobKind {
  let recorded: Promise<unknown> = Promise.resolve();
  return {
    name: MIGRATION_KIND,
    steps: [bulkCopy(deps), cdcCatchup(deps, () => deps.orchestrator().staleAfterMs), cutover(deps)],
    // Events in the order the records were made (one after another).
    observe(row, change) {
      const event = eventOf(row, change);
      if (!event) return;
      const s = row.state as unknown as MigrationState;
      recorded = recorded
        .then(() => deps.events.record({ replicationId: s.replicationId, tenantId: s.tenantId, ...event }))
        .catch((e) => deps.log?.(`migration ${row.id}: could not record an event: ${(e as Error).message}`));
    },
  };
}

/** A phase's message as the API shows it: why it failed, or what it did. */
export function phaseMessage(step: JobRow["steps"][number]): string {
  if (step.error) return step.error;
  const { message } = step.details as { message?: string };
  return message ?? "";
}

type Event = { type: string; severity: string; message: string; details: Record<string, string> };

function eventOf(row: JobRow, change: JobChange): Event | undefined {
  const s = row.state as unknown as MigrationState;
  const base = { migration_id: row.id };
  if (change.what === "step" || change.what === "rollback-step") {
    const step = row.steps[change.index]!;
    if (change.what === "rollback-step") {
      if (change.phase === "begin") return undefined;
      return { type: "MigrationPhase", severity: "Warning", message: `migration ${row.id}: ${step.step} rolled back`, details: { ...base, phase: step.step, status: "RolledBack" } };
    }
    if (change.phase === "begin") {
      return {
        type: "MigrationPhase",
        severity: "Info",
        message: `migration ${row.id}: ${step.step} began${step.attempts > 1 ? ` (attempt ${step.attempts}, after an interruption)` : ""}`,
        details: { ...base, phase: step.step, status: "InProgress", attempt: String(step.attempts) },
      };
    }
    const message = phaseMessage(step);
    return {
      type: "MigrationPhase",
      severity: step.status === "Failed" ? "Error" : "Info",
      message: `migration ${row.id}: ${step.step} ${step.status.toLowerCase()}${step.durationMs !== null ? ` in ${step.durationMs} ms` : ""}${message ? `: ${message}` : ""}`,
      details: { ...base, phase: step.step, status: step.status, duration_ms: String(step.durationMs ?? 0), message },
    };
  }
  if (change.what === "rollback") {
    return { type: "MigrationPhase", severity: row.cancelRequestedAt ? "Warning" : "Error", message: `migration ${row.id}: rolling back: ${row.error ?? ""}`, details: { ...base, status: "RollingBack", message: row.error ?? "" } };
  }
  if (row.status === "Completed") {
    const verified = s.verification?.ok === true;
    const details: Record<string, string> = { ...base, downtime_ms: String(s.downtimeMs ?? 0), verified: String(verified) };
    return {
      type: "MigrationCompleted",
      // A target not verified equal to the source needs a person's eyes, though the switch stands.
      severity: verified ? "Info" : "Error",
      message: `migration ${row.id} completed: the tenant's primary is the target (downtime ${s.downtimeMs ?? 0} ms)${verified ? "" : `; ${s.verification?.message ?? "not verified"}`}`,
      details,
    };
  }
  if (row.status === "Cancelled") {
    return {
      type: "MigrationCancelled",
      severity: "Warning",
      message: `migration ${row.id} cancelled; rollback ${(row.rollbackStatus ?? "").toLowerCase()}`,
      details: { ...base, rollback_status: row.rollbackStatus ?? "", message: row.error ?? "" },
    };
  }
  return {
    type: "MigrationFailed",
    severity: "Error",
    message: `migration ${row.id} failed${row.status === "RolledBack" ? " and was rolled back" : ""}: ${row.error ?? ""}`,
    details: { ...base, status: row.status, rollback_status: row.rollbackStatus ?? "", message: row.error ?? "" },
  };
}
