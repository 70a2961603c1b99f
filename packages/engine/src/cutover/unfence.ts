// Lifting a fence (fence.ts): the rollback or cancel of a cutover, and the
// promotion of an old primary failed back to. Writes are accepted again at
// once; the triggers are dropped when nothing holds the tables, else first
// disabled.
import type pg from "pg";
import { sqlStateOf } from "../failure";
import { qualified } from "../source/publication";
import { FENCE_TRIGGER, FenceError } from "./fence";
import { beginQuick, cancelAutovacuum, heldBy, TIMED_OUT } from "./table-locks";
import { open, resolveTables, type ResolvedTable, type TenantDatabase } from "./tables";

export interface Unfenced {
  /** Tables whose fence trigger was dropped. */
  dropped: string[];
  /**
   * Tables whose fence was disabled (writes go on) but whose trigger could
   * not be dropped in time: DROP TRIGGER needs an ACCESS EXCLUSIVE lock, which
   * waits for reads in flight. Unfencing again drops them.
   */
  disabled: string[];
  /** What held a table past the quick drop (the sessions and their locks, said briefly); empty when nothing did. */
  contention: string[];
}

/** How long unfence's first attempt waits to drop the triggers before it disables them first. */
const DROP_AT_ONCE_MS = 50;

/**
 * Lifts the fence from `tables` (rollback, cancel): writes are accepted
 * again at once. Idempotent; a table that is not fenced, or no longer
 * exists, is passed over.
 */
export async function unfence(source: TenantDatabase, tables: readonly string[], options: { lockTimeoutMs?: number } = {}): Promise<Unfenced> {
  const timeoutMs = options.lockTimeoutMs ?? 1_000;
  const client = await open(source, "heliosdb_unfence");
  try {
    const fenced = await fencedTables(client, source.schema, tables);
    if (fenced.length === 0) return { dropped: [], disabled: [], contention: [] };
    const names = fenced.map((t) => `${t.schema}.${t.table}`);
    // Autovacuum's lock, which both statements below wait for as the fence's lock does (see cancelAutovacuum).
    await cancelAutovacuum(client, fenced);
    const begin = await beginQuick(client);
    const drop = fenced.map((t) => `DROP TRIGGER IF EXISTS ${FENCE_TRIGGER} ON ${qualified(t)}`);
    // Dropped at once when nothing holds the tables (the usual case: one commit, which a failover's promotion
    // makes inside its downtime). DROP TRIGGER's ACCESS EXCLUSIVE lock waits for reads in flight, and reads
    // queue behind it while it waits, so it waits a moment only.
    try {
      await inTransaction(client, begin, Math.min(timeoutMs, DROP_AT_ONCE_MS), drop);
      return { dropped: names, disabled: [], contention: [] };
    } catch (e) {
      if (!TIMED_OUT.has(sqlStateOf(e) ?? "")) throw e;
    }
    // What held them is kept (evidence for a slow promotion), and an autovacuum begun since the first is cancelled.
    const contention: string[] = [];
    for (const t of fenced) {
      const held = await heldBy(client, t, true);
      if (held) contention.push(`${t.table}: ${held}`);
    }
    await cancelAutovacuum(client, fenced);
    // Else first disabled: SHARE ROW EXCLUSIVE waits for writers (there are none: they fail) but not for readers.
    await inTransaction(client, begin, timeoutMs, fenced.map((t) => `ALTER TABLE ONLY ${qualified(t)} DISABLE TRIGGER ${FENCE_TRIGGER}`));
    try {
      await inTransaction(client, begin, timeoutMs, drop);
      return { dropped: names, disabled: [], contention };
    } catch (e) {
      if (!TIMED_OUT.has(sqlStateOf(e) ?? "")) throw e;
      return { dropped: [], disabled: names, contention };
    }
  } catch (e) {
    if (TIMED_OUT.has(sqlStateOf(e) ?? "")) {
      throw new FenceError(`unfence: sessions held the tenant's tables past ${timeoutMs} ms; the fence stays`, "lock_timeout", { cause: e });
    }
    throw e;
  } finally {
    await client.end().catch(() => undefined);
  }
}

// The tables of the set (partitions and children included) that carry a fence trigger.
async function fencedTables(client: pg.ClientBase, schema: string, tables: readonly string[]): Promise<ResolvedTable[]> {
  const all = await resolveTables(client, schema, tables, true);
  if (all.length === 0) return [];
  const { rows: triggered } = await client.query<{ tgrelid: number }>(
    "SELECT tgrelid FROM pg_trigger WHERE tgname = $1 AND tgrelid = ANY($2::oid[])",
    [FENCE_TRIGGER, all.map((t) => t.oid)],
  );
  const oids = new Set(triggered.map((r) => r.tgrelid));
  return all.filter((t) => oids.has(t.oid));
}

async function inTransaction(client: pg.Client, begin: string, timeoutMs: number, statements: string[]): Promise<void> {
  try {
    await client.query(`${begin} SET LOCAL lock_timeout = ${timeoutMs}; ${statements.join(";\n")}; COMMIT`);
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  }
}
