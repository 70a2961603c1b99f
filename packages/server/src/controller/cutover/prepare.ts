// The target made ready before the fence, shared by failover
// (ValidateReplicaHealth, then PromoteReplica) and — once it points here —
// migration (Cutover): everything that does not need the source's writes
// stopped is done while the tenant still writes there, so that the window in
// which writes wait holds only what must wait for the fence.
//
// - prepareTarget, before the fence: the check that the target takes writes
//   (checkWritable; not of a fenced target, which refuses them until its
//   promotion lifts its fence), the source's column defaults set on it with a short
//   lock timeout (the replication's applier holds the tables while it
//   applies; waiting longer would stall it, or meet it in a deadlock), and
//   its sequences created and planned (their positions only mean something at
//   the fence; the plan leaves the window only positions to read and set).
// - atFence, in the window: every sequence's position as the fence left it
//   (logical decoding carries none), and the defaults the target did not take
//   before (their ALTER waits for the applier's locks, which the fence frees).
//   Columns that already have theirs are only read, so this is cheap.
//
// Both are re-runnable: each reads what the target has and sets what differs.
import type { JsonObject } from "@bufbuild/protobuf";
import { checkWritable, copyColumnDefaults, planSequences, syncSequences, type SequencePlan, type TenantDatabase } from "@heliosdb/replication-engine";
import { timed } from "./timed";

export interface Prepared {
  lines: string[];
  /** Column defaults the target did not take (the replication's applier held the table): left for the fence. */
  defaultsLeft: number;
  /** Which target sequence takes each source sequence's position, for atFence. */
  sequences: SequencePlan;
}

/** What was done; throws when the target refuses writes. */
export async function prepareTarget(
  source: TenantDatabase,
  target: TenantDatabase,
  tables: string[],
  options: { checkWritable: boolean } = { checkWritable: true },
  took?: Record<string, number>,
): Promise<Prepared> {
  // A fenced target (an old primary failed back to) refuses writes until its fence is lifted, after the source's;
  // defaults (DDL) and sequences (setval) are not fenced, so those are done now all the same.
  const lines = options.checkWritable ? await timed(took, "ready_ms", () => checkTargetWritable(target, tables)) : [];
  const pre = await timed(took, "prepare_ms", async () => ({
    defaults: await copyColumnDefaults(source, target, tables, { lockTimeoutMs: 200 }),
    sequences: await planSequences(source, target, tables),
  }));
  lines.push(
    `before the fence: ${pre.defaults.set.length} column default(s) set, ${pre.sequences.moves.length} sequence(s) made ready` +
      (pre.defaults.failed.length ? `, ${pre.defaults.failed.length} default(s) left for the fence (the replication held the table)` : ""),
  );
  return { lines, defaultsLeft: pre.defaults.failed.length, sequences: pre.sequences };
}

/** The engine's checkWritable, said as a line; throws when the target refuses writes. */
export async function checkTargetWritable(target: TenantDatabase, tables: string[]): Promise<string[]> {
  const writable = await checkWritable(target, tables);
  if (!writable.writable) throw new Error(`the new primary refuses writes: ${writable.problems.join("; ")}`);
  return ["the new primary takes writes (an INSERT, UPDATE and DELETE of no row on every table, rolled back)"];
}

export interface AtFence {
  lines: string[];
  /** The sequences as the job's report names them. */
  details: JsonObject;
}

export interface AtFenceOptions {
  lockTimeoutMs: number;
  /** False when the caller knows that no default was left from before the fence: then only sequences are positioned. */
  defaults: boolean;
  /** prepareTarget's plan (none: the catalogs are read in the window too). */
  sequences?: SequencePlan | undefined;
}

/** In the window: sequence positions, and the column defaults left from before the fence (one after the other). */
export async function atFence(source: TenantDatabase, target: TenantDatabase, tables: string[], options: AtFenceOptions, took?: Record<string, number>): Promise<AtFence> {
  // On lent sessions (one primitive at a time), and a default's ALTER TABLE waits for nothing once the drain is done.
  const sequences = await sequencesAtFence(source, target, tables, options.sequences, took);
  const defaults = await defaultsAtFence(source, target, tables, options, took);
  return { lines: [...sequences.lines, ...defaults], details: sequences.details };
}

/**
 * Every sequence's position as the fence left it. Needs only the fence, not
 * the drain: a writer the fence refused may have moved a sequence on since,
 * never back, so no value a committed write took is handed out again.
 */
export async function sequencesAtFence(source: TenantDatabase, target: TenantDatabase, tables: string[], plan: SequencePlan | undefined, took?: Record<string, number>): Promise<AtFence> {
  const sequences = await timed(took, "sequences_ms", () => syncSequences(source, target, tables, plan ? { plan } : {}));
  return {
    lines: [`${sequences.length} sequence(s) synced at the fence${sequences.length ? ` (${sequences.map((q) => `${q.target} at ${q.lastValue}`).join(", ")})` : ""}`],
    details: { sequences: sequences.map((q) => ({ source: q.source, target: q.target, last_value: q.lastValue.toString(), action: q.action })) },
  };
}

/** After the drain (an ALTER TABLE waits for the applier's locks): the column defaults the target did not take before the fence. */
export async function defaultsAtFence(
  source: TenantDatabase,
  target: TenantDatabase,
  tables: string[],
  options: Omit<AtFenceOptions, "sequences">,
  took?: Record<string, number>,
): Promise<string[]> {
  if (!options.defaults) return ["every column default was set before the fence"];
  const defaults = await timed(took, "defaults_ms", () => copyColumnDefaults(source, target, tables, { lockTimeoutMs: options.lockTimeoutMs }));
  const lines: string[] = [];
  if (defaults.set.length > 0) lines.push(`${defaults.set.length} column default(s) set at the fence (${defaults.set.map((d) => `${d.table}.${d.column}`).join(", ")})`);
  if (defaults.failed.length > 0) {
    lines.push(`column defaults the new primary did not take: ${defaults.failed.map((d) => `${d.table}.${d.column} DEFAULT ${d.expression} (${d.error})`).join("; ")}`);
  }
  return lines;
}
