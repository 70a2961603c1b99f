// Taking a tenant's table locks under a write load, shared by the fence and
// unfence: what a lock wait ends with, the autovacuum workers that would hold
// it for a second, and who held a table when a wait ran long.
import type pg from "pg";
import type { ResolvedTable } from "./tables";

// 55P03 lock_not_available (lock_timeout), 57014 query_canceled (statement_timeout).
export const TIMED_OUT = new Set(["55P03", "57014"]);
// A deadlock with a writer that holds one of the tables and waits for another we hold.
export const DEADLOCK = "40P01";

// Autovacuum (a VACUUM or ANALYZE it started) holds SHARE UPDATE EXCLUSIVE on
// its table, which the fence's EXCLUSIVE waits for. PostgreSQL cancels such a
// worker for a waiter only after the waiter's deadlock_timeout (1 s by
// default): under a steady write load, where autovacuum runs often, that was
// a cutover's downtime p99. So the workers on the tenant's tables are
// cancelled right before the fence, again before an attempt after one that
// met contention, and before unfence's DDL, which waits for them the same
// way on a new primary failed back to (they run again at a later round). Doing
// so takes superuser or, from PostgreSQL 18, pg_signal_autovacuum_worker:
// a role without it is refused, and the fence waits as it would have.
export async function cancelAutovacuum(client: pg.Client, tables: ResolvedTable[]): Promise<void> {
  await client
    .query(
      `SELECT pg_cancel_backend(a.pid)
         FROM pg_stat_activity a
        WHERE a.backend_type = 'autovacuum worker'
          AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.relation = ANY($1::oid[]))`,
      [tables.map((t) => t.oid)],
    )
    .catch(() => undefined);
}

// PostgreSQL itself cancels an autovacuum worker that blocks a lock waiter, once the waiter has waited its
// deadlock_timeout (1 s by default). Set short in the fence's and unfence's transactions, that closes the gap
// cancelAutovacuum leaves: a worker that began on a table after its sweep is cancelled within 10 ms of meeting the
// lock (and a deadlock, which the fence retries, is found as soon). Setting it takes superuser or, from PostgreSQL
// 15, SET on the parameter: without either, transactions begin plainly.
export async function beginQuick(client: pg.Client): Promise<string> {
  const { rows } = await client
    .query<{ ok: boolean }>("SELECT has_parameter_privilege('deadlock_timeout', 'SET') AS ok")
    .catch(() => ({ rows: [{ ok: false }] }));
  return rows[0]?.ok ? "BEGIN; SET LOCAL deadlock_timeout = 10;" : "BEGIN;";
}

// The sessions that hold a lock on `table` that EXCLUSIVE waits for (all but ACCESS SHARE) or, with `reads`, that
// ACCESS EXCLUSIVE waits for (any), said briefly; undefined when none does (any more).
export async function heldBy(client: pg.Client, table: ResolvedTable, reads = false): Promise<string | undefined> {
  const { rows } = await client
    .query<{ held: string }>(
      `SELECT format('%s %s (%s, %s)', a.backend_type, l.mode, coalesce(a.state, '?'), left(coalesce(a.query, ''), 60)) AS held
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.relation = $1 AND l.granted AND ($2 OR l.mode <> 'AccessShareLock') AND l.pid <> pg_backend_pid()`,
      [table.oid, reads],
    )
    .catch(() => ({ rows: [] as { held: string }[] }));
  return rows.length ? rows.map((r) => r.held).join("; ") : undefined;
}
