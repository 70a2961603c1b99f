// The failover kind of leased job (spec §2.3.1): its four steps, and the
// events a subscriber of the replication sees as it runs — each step's
// start and end, the rollback of each, and how the failover ended. Every
// step is re-runnable (each saves what it did before the next part begins):
// a failover whose server dies in any step is resumed by the server that
// takes its lease next (docs/failover.md).
import { formatLsn } from "@heliosdb/replication-engine";
import type { JobChange, JobKind } from "../../orchestrator/job-kind";
import { FAILOVER_KIND } from "../../store/failovers";
import type { JobRow } from "../../store/jobs";
import { JobSessions } from "../cutover/sessions";
import { type FailoverDeps, type FailoverState } from "./deps";
import { promoteReplica } from "./promote";
import { updateRouting } from "./routing";
import { stopReplication } from "./stop";
import { validateReplicaHealth } from "./validate";

export const FAILOVER_STEPS = ["ValidateReplicaHealth", "StopReplication", "PromoteReplica", "UpdateRouting"] as const;

export function failoverKind(options: FailoverDeps): JobKind {
  // Each failover's sessions from before its fence to its switch (lentDatabasesOf), ended when it ends here.
  const deps: FailoverDeps = { ...options, sessions: options.sessions ?? new JobSessions() };
  let recorded: Promise<unknown> = Promise.resolve();
  return {
    name: FAILOVER_KIND,
    steps: [validateReplicaHealth(deps), stopReplication(deps), promoteReplica(deps), updateRouting(deps)],
    // Events in the order the records were made (one after another).
    observe(row, change) {
      if (change.what === "end") void deps.sessions!.release(row.id);
      const event = eventOf(row, change);
      if (!event) return;
      const s = row.state as unknown as FailoverState;
      recorded = recorded
        .then(() => deps.events.record({ replicationId: s.replicationId, tenantId: s.tenantId, ...event }))
        .catch((e) => deps.log?.(`failover ${row.id}: could not record an event: ${(e as Error).message}`));
    },
  };
}

/** A step's message as the API shows it: why it failed, why it was skipped, or what it did. */
export function stepMessage(step: JobRow["steps"][number]): string {
  if (step.error) return step.error;
  const { reason, message } = step.details as { reason?: string; message?: string };
  return reason ?? message ?? "";
}

type Event = { type: string; severity: string; message: string; details: Record<string, string> };

function eventOf(row: JobRow, change: JobChange): Event | undefined {
  const s = row.state as unknown as FailoverState;
  const base = { failover_id: row.id };
  if (change.what === "step" || change.what === "rollback-step") {
    const step = row.steps[change.index]!;
    if (change.what === "rollback-step") {
      if (change.phase === "begin") return undefined;
      return { type: "FailoverStep", severity: "Warning", message: `failover ${row.id}: ${step.step} rolled back`, details: { ...base, step: step.step, status: "RolledBack" } };
    }
    if (change.phase === "begin") {
      return {
        type: "FailoverStep",
        severity: "Info",
        message: `failover ${row.id}: ${step.step} began${step.attempts > 1 ? ` (attempt ${step.attempts}, after an interruption)` : ""}`,
        details: { ...base, step: step.step, status: "InProgress", attempt: String(step.attempts) },
      };
    }
    const message = stepMessage(step);
    return {
      type: "FailoverStep",
      // A new primary that differs from the source at the fence needs a person's eyes, though the step completed.
      severity: step.status === "Failed" || (step.details as { verified?: boolean }).verified === false ? "Error" : step.status === "Skipped" ? "Warning" : "Info",
      message: `failover ${row.id}: ${step.step} ${step.status.toLowerCase()}${step.durationMs !== null ? ` in ${step.durationMs} ms` : ""}${message ? `: ${message}` : ""}`,
      details: { ...base, step: step.step, status: step.status, duration_ms: String(step.durationMs ?? 0), message },
    };
  }
  if (change.what === "rollback") {
    return { type: "FailoverStep", severity: "Error", message: `failover ${row.id}: rolling back: ${row.error ?? ""}`, details: { ...base, status: "RollingBack", message: row.error ?? "" } };
  }
  if (row.status === "Completed") {
    const details: Record<string, string> = { ...base };
    if (s.downtimeMs !== undefined) details.downtime_ms = String(s.downtimeMs);
    if (s.fence) details.final_lsn = formatLsn(BigInt(s.fence.finalLsn));
    if (s.lossWindow) details.last_applied_lsn = formatLsn(BigInt(s.lossWindow.lsn));
    if (s.reverseReplicationId) details.reverse_replication_id = s.reverseReplicationId;
    if (s.verification) details.verified = String(s.verification.ok);
    const downtime = s.downtimeMs !== undefined ? ` (downtime ${s.downtimeMs} ms)` : "";
    const loss = s.lossWindow ? `; writes the source committed after ${details.last_applied_lsn} may be lost` : "";
    const unverified = s.verification && !s.verification.ok ? `; ${s.verification.message}` : "";
    // The switch stands whatever the verification found; a target not verified equal is said loudly.
    const severity = unverified ? "Error" : s.lossWindow ? "Warning" : "Info";
    return { type: "FailoverCompleted", severity, message: `failover ${row.id} completed: the replica is the primary${downtime}${loss}${unverified}`, details };
  }
  return {
    type: "FailoverFailed",
    severity: "Error",
    message: `failover ${row.id} ${row.status === "RolledBack" ? "rolled back" : "failed"}: ${row.error ?? ""}`,
    details: { ...base, status: row.status, message: row.error ?? "" },
  };
}
