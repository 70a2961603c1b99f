// The end of a cutover, shared by failover (UpdateRouting) and migration
// (Cutover): the tenant's routing names the new primary — one statement, one
// transaction, the version moved by one, writes unblocked, the job named —
// and every watcher hears it at commit. The downtime is measured here: from
// the fence's blockingSince (the first write that waited) to the switch's
// commit, both on the clock of the server that ran them; never estimated.
// A switch already made by this job (a run interrupted before it said so) is
// found in the routing row, not made twice.
import type { ConnectionInfo } from "@heliosdb/replication-proto";
import { LeaseLost } from "../../orchestrator/job-kind";
import { samePrimary, type RoutingStore } from "../../store/routing";
import { changerOf, cutoverState, saveCutover, type CutoverContext } from "./state";

export interface Switched {
  switchedAt: Date;
  /** The routing's new version (undefined when an earlier run switched it and this one found it). */
  version?: bigint;
  /** Undefined when no fence was put up (nothing was blocked). */
  downtimeMs?: number;
}

export async function switchRouting(ctx: CutoverContext, routing: RoutingStore, newPrimary: ConnectionInfo, kind: "failover" | "migration"): Promise<Switched> {
  const s = cutoverState(ctx);
  if (s.routingSwitchedAt) return { switchedAt: new Date(s.routingSwitchedAt), ...(s.downtimeMs !== undefined ? { downtimeMs: s.downtimeMs } : {}) };
  let switchedAt: Date;
  let version: bigint | undefined;
  const now = await routing.get(s.tenantId);
  const by = kind === "migration" ? now?.migrationId : now?.failoverId;
  if (now && by === ctx.jobId && !now.writesBlocked && samePrimary(now.primary, newPrimary)) {
    // Switched by an earlier run that was interrupted before it said so: the row's own time (the control plane's clock).
    switchedAt = now.updatedAt;
    version = now.version;
  } else {
    const switched = await routing.switchPrimary(s.tenantId, newPrimary, ctx.jobId, changerOf(ctx, kind));
    switchedAt = new Date();
    if (!switched) throw new LeaseLost(ctx.jobId);
    version = switched.version;
  }
  const downtimeMs = s.fence ? Math.max(0, switchedAt.getTime() - Date.parse(s.fence.blockingSince)) : undefined;
  await saveCutover(ctx, { routingSwitchedAt: switchedAt.toISOString(), ...(downtimeMs !== undefined ? { downtimeMs } : {}) });
  return { switchedAt, version, ...(downtimeMs !== undefined ? { downtimeMs } : {}) };
}

/** Rollback: the routing back on `oldPrimary` if this job switched it to `newPrimary`. */
export async function switchBack(ctx: CutoverContext, routing: RoutingStore, oldPrimary: ConnectionInfo, newPrimary: ConnectionInfo, kind: "failover" | "migration"): Promise<void> {
  const s = cutoverState(ctx);
  const now = await routing.get(s.tenantId);
  const by = kind === "migration" ? now?.migrationId : now?.failoverId;
  if (now && by === ctx.jobId && samePrimary(now.primary, newPrimary)) {
    if (!(await routing.switchPrimary(s.tenantId, oldPrimary, ctx.jobId, changerOf(ctx, kind)))) throw new LeaseLost(ctx.jobId);
  }
}
