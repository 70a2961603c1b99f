// What a cutover saves in its job's state as it goes — the same fields for a
// failover and a migration, so that the shared parts below (fence, drain,
// stop, promote, switch) find what an earlier run did whichever kind of job
// runs them, and a server that resumes the job goes on from there.
// Positions are LSNs in decimal, times ISO text.
import type { JsonObject } from "@bufbuild/protobuf";
import type { StepContext } from "../../orchestrator/job-kind";
import type { RoutingChanger } from "../../store/routing";

export interface CutoverState {
  tenantId: string;
  /** The tenant's tables (names in the schema), from the source's catalog (the target's when the source is away). */
  tables?: string[];
  /** When a fence was first asked for: a run interrupted after it may have fenced without saying so. */
  fencing?: string;
  /** The fence as put up; `contention`: what held a table past a step of its lock (fence()'s Fence.contention), when anything did. */
  fence?: { finalLsn: string; blockingSince: string; fencedAt: string; tables: string[]; contention?: string[] };
  /** The routing was marked writes_blocked by this job (a rollback unmarks it). */
  routingBlocked?: boolean;
  /** The position the target had applied when the drain ended (at or past the fence's final LSN). */
  drained?: string;
  /** The replication was asked to stop (a rollback may start it again). */
  stopRequested?: boolean;
  /** Stored as stopped and its pipeline told to halt; its slot and publication still there (dropped after the switch). */
  halted?: boolean;
  /** Stopped for good: its slot and publication dropped (or, its source away, its pipeline halted). */
  stopped?: boolean;
  /** When the new primary carried a fence (an old primary failed back to): its tables, named, whose fence was lifted. */
  targetUnfenced?: string[];
  routingSwitchedAt?: string;
  downtimeMs?: number;
}

export type CutoverContext = StepContext;

export function cutoverState(ctx: { state: JsonObject } | { state: Readonly<JsonObject> }): CutoverState {
  return ctx.state as unknown as CutoverState;
}

export function saveCutover(ctx: CutoverContext, patch: Partial<CutoverState>): Promise<void> {
  return ctx.save(patch as JsonObject);
}

/** The job as the routing store names it, under its lease. */
export function changerOf(ctx: CutoverContext, kind: "failover" | "migration"): RoutingChanger {
  return { jobId: ctx.jobId, ...ctx.lease, kind };
}
