// Making the new primary one the tenant's clients can use, shared by
// migration (Cutover) and failover (PromoteReplica's rollback):
//
// - readyTarget: a fence on it lifted (a database failed back or migrated
//   back to is an old primary, left fenced by the cutover that demoted it),
//   then the check that clients can write there now (the engine's
//   checkWritable), before anything is written there. (Failover lifts a
//   fence in PromoteReplica and checks the target before the fence instead:
//   cutover/prepare.ts.)
// - Sequences, defaults and the verification, which a failover made here
//   inside the downtime, are in prepare.ts (before the fence, and at it) and
//   verify-at-switch.ts (after the switch).
//
// readyTarget finds what an earlier run did; refenceTarget is its rollback.
import { checkWritable, fence, unfence, type TenantDatabase, type Unfenced } from "@heliosdb/replication-engine";
import { cutoverState, saveCutover, type CutoverContext } from "./state";

/** A fence lifted from a new primary, said: where, and what held its tables past the quick drop (evidence for a slow promotion). */
export function liftedLine(lifted: Unfenced): string {
  const held = lifted.contention.length ? ` (dropping it waited for ${lifted.contention.join("; ")})` : "";
  return `lifted the fence an earlier failover left on ${[...lifted.dropped, ...lifted.disabled].join(", ")}${held}`;
}

/** Lines saying what was done. Throws when the new primary refuses writes. */
export async function readyTarget(ctx: CutoverContext, target: TenantDatabase, tables: string[]): Promise<string[]> {
  const lines: string[] = [];
  const lifted = await unfence(target, tables);
  const unfenced = [...lifted.dropped, ...lifted.disabled];
  if (unfenced.length > 0) {
    // The tables as named (fence() takes names in the schema; it finds their partitions itself).
    await saveCutover(ctx, { targetUnfenced: tables });
    lines.push(liftedLine(lifted));
  } else if ((cutoverState(ctx).targetUnfenced ?? []).length === 0) {
    lines.push("nothing to restore: the replication disables no trigger or constraint on its target, and no fence was on it");
  }
  const writable = await checkWritable(target, tables);
  if (!writable.writable) throw new Error(`the new primary refuses writes: ${writable.problems.join("; ")}`);
  lines.push("the new primary takes writes (an INSERT, UPDATE and DELETE of no row on every table, rolled back)");
  return lines;
}

/** readyTarget's rollback: a fence it lifted put back (the database is an old primary the routing does not name). */
export async function refenceTarget(ctx: CutoverContext, target: () => Promise<TenantDatabase>, lockTimeoutMs: number): Promise<void> {
  const tables = cutoverState(ctx).targetUnfenced;
  if (!tables?.length) return;
  await fence(await target(), tables, { fenceId: ctx.jobId, lockTimeoutMs });
}
