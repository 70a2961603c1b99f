// Making the new primary one the tenant's clients can use, shared by failover
// (PromoteReplica) and migration (Cutover):
//
// - readyTarget: a fence on it lifted (a database failed back or migrated
//   back to is an old primary, left fenced by the cutover that demoted it),
//   then the check that clients can write there now (the engine's
//   checkWritable), before anything is written there.
// - carryOver: from the source, fenced and drained, every sequence's position
//   (logical decoding carries none), the column defaults the engine's target
//   tables lack, and a verification — row counts and checksums of the tables
//   compared, source at the fence against the new primary (`transformed` ones
//   by count only). A difference is returned, not thrown: the caller decides.
//
// Both find what an earlier run did; refenceTarget is readyTarget's rollback.
import type { JsonObject } from "@bufbuild/protobuf";
import { checkWritable, copyColumnDefaults, fence, syncSequences, unfence, verify, type TenantDatabase } from "@heliosdb/replication-engine";
import { cutoverState, saveCutover, type CutoverContext } from "./state";

/** Lines saying what was done. Throws when the new primary refuses writes. */
export async function readyTarget(ctx: CutoverContext, target: TenantDatabase, tables: string[]): Promise<string[]> {
  const lines: string[] = [];
  const lifted = await unfence(target, tables);
  const unfenced = [...lifted.dropped, ...lifted.disabled];
  if (unfenced.length > 0) {
    // The tables as named (fence() takes names in the schema; it finds their partitions itself).
    await saveCutover(ctx, { targetUnfenced: tables });
    lines.push(`lifted the fence an earlier failover left on ${unfenced.join(", ")}`);
  } else if ((cutoverState(ctx).targetUnfenced ?? []).length === 0) {
    lines.push("nothing to restore: the replication disables no trigger or constraint on its target, and no fence was on it");
  }
  const writable = await checkWritable(target, tables);
  if (!writable.writable) throw new Error(`the new primary refuses writes: ${writable.problems.join("; ")}`);
  lines.push("the new primary takes writes (an INSERT, UPDATE and DELETE of no row on every table, rolled back)");
  return lines;
}

export interface CarriedOver {
  lines: string[];
  details: JsonObject;
  /** Why the new primary differs from the source at the fence; undefined when it does not (or nothing was compared). */
  mismatch?: string;
}

export async function carryOver(source: TenantDatabase, target: TenantDatabase, tables: string[], compare: { tables: string[]; transformed: string[] }): Promise<CarriedOver> {
  const lines: string[] = [];
  const details: JsonObject = {};
  const sequences = await syncSequences(source, target, tables);
  details.sequences = sequences.map((q) => ({ source: q.source, target: q.target, last_value: q.lastValue.toString(), action: q.action }));
  lines.push(`${sequences.length} sequence(s) synced from the source${sequences.length ? ` (${sequences.map((q) => `${q.target} at ${q.lastValue}${q.action === "set" ? "" : `, ${q.action}`}`).join(", ")})` : ""}`);
  const defaults = await copyColumnDefaults(source, target, tables);
  details.defaults = defaults.set.map((d) => `${d.table}.${d.column} DEFAULT ${d.expression}`);
  lines.push(`${defaults.set.length} column default(s) copied from the source`);
  if (defaults.failed.length > 0) {
    lines.push(`column defaults the new primary did not take: ${defaults.failed.map((d) => `${d.table}.${d.column} DEFAULT ${d.expression} (${d.error})`).join("; ")}`);
  }
  let mismatch: string | undefined;
  if (compare.tables.length > 0) {
    const v = await verify(source, target, compare.tables, { checksum: true, transformed: compare.transformed });
    details.verification = v.tables.map((t) => ({ table: t.table, source_rows: t.sourceRows, target_rows: t.targetRows, checksum: t.checksum }));
    const summary = v.tables.map((t) => `${t.table} ${t.targetRows}/${t.sourceRows} rows, ${t.checksum === "match" ? "checksums equal" : t.checksum}`).join("; ");
    if (!v.ok) mismatch = `the replica differs from the source at the fence in ${v.mismatched.join(", ")} (${summary})`;
    else lines.push(`the replica equals the source at the fence: ${summary}`);
  }
  return { lines, details, ...(mismatch ? { mismatch } : {}) };
}

/** readyTarget's rollback: a fence it lifted put back (the database is an old primary the routing does not name). */
export async function refenceTarget(ctx: CutoverContext, target: () => Promise<TenantDatabase>, lockTimeoutMs: number): Promise<void> {
  const tables = cutoverState(ctx).targetUnfenced;
  if (!tables?.length) return;
  await fence(await target(), tables, { fenceId: ctx.jobId, lockTimeoutMs });
}
