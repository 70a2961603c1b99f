// The first part of a cutover, shared by failover (StopReplication) and
// migration (Cutover): the next primary announced in routing, the tenant's tables fenced on the old primary (from
// then on its writers fail with 25006 and follow routing), the routing marked
// writes_blocked (a new version: clients that follow it learn that writes
// wait for the switch), and the way back (unfence, unblock). Each part saves
// what it did before the next, so a run after an interruption goes on from
// there: a fence already up is not fenced again (a new fence would move the
// final LSN past a slot that may already be gone).
import type { ConnectionInfo } from "@heliosdb/replication-proto";
import { fence, unfence, type TenantDatabase } from "@heliosdb/replication-engine";
import { samePrimary, type RoutingStore } from "../../store/routing";
import { changerOf, cutoverState, saveCutover, type CutoverContext, type CutoverState } from "./state";

/** What a fence's lock waited for, said for a step's message (nothing when it met no contention). */
export const contended = (f: NonNullable<CutoverState["fence"]>) => (f.contention?.length ? ` (the fence's lock waited for ${f.contention.join("; ")})` : "");

/** Fences `tables` on `source` unless this job already did; the fence as saved. */
export async function fenceSource(ctx: CutoverContext, source: TenantDatabase, tables: string[], lockTimeoutMs: number): Promise<NonNullable<CutoverState["fence"]>> {
  const s = cutoverState(ctx);
  if (s.fence) return s.fence;
  // An earlier run may have fenced without saving it: the first ask is when writes may have stopped.
  const earlier = s.fencing;
  if (!earlier) await saveCutover(ctx, { fencing: new Date().toISOString() });
  const f = await fence(source, tables, { fenceId: ctx.jobId, lockTimeoutMs });
  const blockingSince = earlier && Date.parse(earlier) < f.blockingSince.getTime() ? earlier : f.blockingSince.toISOString();
  const saved = { finalLsn: f.finalLsn.toString(), blockingSince, fencedAt: f.fencedAt.toISOString(), tables: f.tables, ...(f.contention.length ? { contention: f.contention } : {}) };
  await saveCutover(ctx, { fence: saved });
  return saved;
}

/**
 * Announces, while the routing names `oldPrimary`, the primary this cutover
 * will switch to (routing's next_primary, a new version): clients that follow
 * routing can connect there before the fence, and follow the switch without
 * a connection set-up inside the downtime. Made before the fence, so it costs
 * the tenant's writes nothing; the switch clears it, and so does the way back.
 */
export async function announceNext(ctx: CutoverContext, routing: RoutingStore, oldPrimary: ConnectionInfo, next: ConnectionInfo, kind: "failover" | "migration"): Promise<void> {
  const s = cutoverState(ctx);
  const now = await routing.get(s.tenantId);
  // Already announced (a step run again): the store changes nothing.
  if (now && samePrimary(now.primary, oldPrimary)) await routing.setNextPrimary(s.tenantId, now.version, next, ctx.jobId, changerOf(ctx, kind));
}

/** Marks the tenant's writes blocked while its routing names `oldPrimary` (once). */
export async function blockRouting(ctx: CutoverContext, routing: RoutingStore, oldPrimary: ConnectionInfo, kind: "failover" | "migration"): Promise<void> {
  const s = cutoverState(ctx);
  if (s.routingBlocked) return;
  const now = await routing.get(s.tenantId);
  if (!now || !samePrimary(now.primary, oldPrimary)) return;
  // Blocked by this job already: a run interrupted before it saved so (the rollback must still find it, to unblock).
  const ours = now.writesBlocked && (kind === "migration" ? now.migrationId : now.failoverId) === ctx.jobId;
  if (ours || (!now.writesBlocked && (await routing.setWritesBlocked(s.tenantId, now.version, true, ctx.jobId, changerOf(ctx, kind))))) {
    await saveCutover(ctx, { routingBlocked: true });
  }
}

/** The way back: the fence lifted (also one an interrupted run may have put up), the routing unblocked. */
export async function liftFence(
  ctx: CutoverContext,
  routing: RoutingStore,
  oldPrimary: ConnectionInfo,
  kind: "failover" | "migration",
  source: () => Promise<{ db: TenantDatabase; tables: string[] }>,
): Promise<void> {
  const s = cutoverState(ctx);
  if (s.fence || s.fencing) {
    const { db, tables } = await source();
    // The tables as named in the schema (the fence's own list is schema-qualified).
    await unfence(db, tables);
  }
  const now = await routing.get(s.tenantId);
  if (!now || !samePrimary(now.primary, oldPrimary)) return;
  // Unblocked, the routing forgets the next primary too; not blocked, this job's announcement of it is withdrawn.
  if (s.routingBlocked && now.writesBlocked) await routing.setWritesBlocked(s.tenantId, now.version, false, ctx.jobId, changerOf(ctx, kind));
  else if (now.nextPrimary && (kind === "migration" ? now.migrationId : now.failoverId) === ctx.jobId) {
    await routing.setNextPrimary(s.tenantId, now.version, null, ctx.jobId, changerOf(ctx, kind));
  }
}
