// ValidateReplicaHealth (spec §2.3.1): is the replica fit to be the primary?
// Its target answers; the replication streams, its figures live; its lag is
// within max_lag_seconds; and it holds the tenant's data as the tenant wrote
// it (see replica-data.ts: a replica whose PII is hashed holds HMACs, not the
// tenant's values, and promoting it would hand those to the tenant's
// clients as if they were their data). A replication that is starting, or
// whose figures are not live (its server died and another is taking it
// over: a failover resumed after a crash meets exactly that), is waited for
// a while (`settleMs`) before it counts as not streaming. Every check runs,
// and every failure is said at once. Without `force` a failure fails the step (the failover
// ends RolledBack, having changed nothing); with `force` the step is Skipped
// and its message names each check that failed.
//
// Then, before any fence (the tenant still writes on the source), the target
// made ready so that the downtime holds only what must wait for the fence
// (cutover/prepare.ts): checked to take writes, the source's column defaults
// set on it, its sequences created. A target that carries a fence (an old
// primary failed back to) is left as it is: it refuses writes until
// PromoteReplica lifts its fence, which must wait for the source's (its
// defaults and sequences are made all the same: the fence stops no DDL nor
// setval). With the source unreachable only the check that the target takes
// writes is made.
import { setTimeout as sleep } from "node:timers/promises";
import { isFenced, tenantTables, type TenantDatabase } from "@heliosdb/replication-engine";
import type { ReplicationRow } from "../../store/replications";
import { type FailoverContext, type FailoverDeps, databasesOf, pause, replicationOf, save, stateOf, unreachable } from "./deps";
import { replicaData } from "./replica-data";
import type { JobStep } from "../../orchestrator/job-kind";
import { checkTargetWritable, prepareTarget } from "../cutover/prepare";

export function validateReplicaHealth(deps: FailoverDeps): JobStep {
  return {
    name: "ValidateReplicaHealth",
    rerunnable: true,
    async run(ctx: FailoverContext) {
      const s = stateOf(ctx);
      let row = await replicationOf(deps, s.replicationId);
      const { source, target } = await databasesOf(deps, row);
      const failed: string[] = [];
      const why = await unreachable(deps, target);
      if (why) failed.push(`the target is unreachable: ${why}`);
      // A replication between owners (its server died, another takes it over) or starting streams again by
      // itself: waited for, a while, rather than refused.
      const deadline = Date.now() + (deps.settleMs ?? 30_000);
      let stream = streaming(deps, row);
      while (stream.settling && Date.now() < deadline && !s.force) {
        await sleep(250, undefined, { signal: ctx.signal });
        row = await replicationOf(deps, s.replicationId);
        stream = streaming(deps, row);
      }
      if (stream.problem) failed.push(stream.problem);
      const figures = row.figures;
      const max = row.config.maxLagSeconds;
      if (figures && max > 0 && figures.lagSeconds > max) {
        failed.push(`its lag is ${figures.lagSeconds.toFixed(1)} s, above max_lag_seconds ${max}`);
      }
      const data = replicaData(row.config);
      if (data.rewritten.length > 0 || data.partial.length > 0) {
        failed.push(
          `the replica does not hold the tenant's data as the tenant wrote it — ${[...data.rewritten, ...data.partial].join("; ")} — ` +
            "so the promoted data would not be the tenant's data",
        );
      }
      if (failed.length > 0 && !s.force) throw new Error(`the replica is not fit to be promoted: ${failed.join("; ")}. Trigger with force to fail over anyway`);
      await save(ctx, { priorDesired: s.priorDesired ?? row.desired });
      // An unreachable target (forced) is checked in PromoteReplica, where it fails the failover if still away.
      const ready = why ? [] : await readyBeforeFence(deps, ctx, row, source, target);
      await pause(deps, "validated", ctx);
      if (failed.length > 0) return { skipped: [`force: failed checks skipped: ${failed.join("; ")}`, ...ready].join("; ") };
      const lag = figures ? `, lag ${figures.lagSeconds.toFixed(1)} s${max > 0 ? ` (max ${max} s)` : ""}` : "";
      await ctx.report({ message: [`the target answers; the replication is Streaming${lag}; the replica holds the tenant's data`, ...ready].join("; ") });
    },
  };
}

// The target made ready while the source still takes writes (see the top of this file); lines saying what was done.
async function readyBeforeFence(deps: FailoverDeps, ctx: FailoverContext, row: ReplicationRow, source: TenantDatabase, target: TenantDatabase): Promise<string[]> {
  const s = stateOf(ctx);
  const [fenced, away] = await Promise.all([isFenced(target), unreachable(deps, source)]);
  const lines = fenced ? ["the target carries a fence (an old primary failed back to): it is checked to take writes once PromoteReplica lifts it, after the source's fence"] : [];
  // The tables as the source names them (StopReplication fences these); the target's when the source is away.
  const tables = s.tables ?? (await tenantTables(away ? target : source, row.config.tableFilter));
  if (!s.tables && !away) await save(ctx, { tables });
  if (away) {
    if (fenced) return lines;
    lines.push(...(await checkTargetWritable(target, tables)));
    await save(ctx, { targetReady: true });
    return lines;
  }
  const prepared = await prepareTarget(source, target, tables, { checkWritable: !fenced });
  await save(ctx, { ...(fenced ? {} : { targetReady: true }), defaultsLeft: prepared.defaultsLeft, sequencePlan: prepared.sequences });
  return [...lines, ...prepared.lines];
}

// Whether the replication streams with live figures; if not, why, and whether that may pass by itself soon.
function streaming(deps: FailoverDeps, row: ReplicationRow): { problem?: string; settling: boolean } {
  const figures = row.figures;
  const observedAt = figures?.observedAt ? Date.parse(figures.observedAt) : undefined;
  const live = row.leaseLive && observedAt !== undefined && Date.now() - observedAt <= deps.orchestrator().staleAfterMs;
  if (row.desired !== "running" || row.status !== "Streaming") {
    const why = figures?.retry ? ` (${figures.retry.side ?? "engine"}: ${figures.retry.message})` : "";
    return { problem: `the replication is ${row.status}, not Streaming${why}`, settling: row.desired === "running" && row.status === "Initializing" };
  }
  if (!live) return { problem: "the replication's figures are not live: no server has observed it streaming lately", settling: true };
  return { settling: false };
}
