// The fence: stops a tenant's writes on its source so that nothing
// acknowledged before the fence is lost and nothing commits there after it.
//
// Mechanism, in one source transaction:
//  1. `LOCK TABLE … IN EXCLUSIVE MODE` on every table of the tenant. EXCLUSIVE
//     conflicts with the ROW EXCLUSIVE lock every INSERT, UPDATE, DELETE and
//     MERGE takes, and not with the ACCESS SHARE of plain reads: reads go on,
//     the lock waits for writers in flight to commit (their commit records are
//     in the WAL before their locks are released), and new writers queue
//     behind it. `lock_timeout` bounds the wait: a writer that keeps its
//     transaction open must not hold a cutover forever, so the fence then
//     fails and rolls back, leaving nothing behind.
//     The tables are locked one at a time, and the order matters: a writer
//     in flight that holds one table and will next write another would wait
//     for the fence holding that one, while the fence waits for it — a
//     deadlock that PostgreSQL breaks only after deadlock_timeout (1 s by
//     default; the fence sets 10 ms where its role may: table-locks.ts),
//     most often by ending the fence, which then meets the next writer the
//     same way. So the fence waits without limit (within the budget) only
//     for the first table, while it holds nothing and can be in no cycle;
//     for each other table it waits a short step (100 ms, doubling with each
//     attempt), and a table not granted in that step starts the next attempt
//     with that table first. Writers that take the tenant's tables in one
//     order find the fence taking them in the same order after at most one
//     such step, whatever order the caller named them in.
//  2. On every table (and every partition or child, which a statement can
//     target directly) a statement-level
//     `BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE` trigger that raises
//     SQLSTATE 25006 (read_only_sql_transaction). A writer queued behind the
//     lock does not commit when the lock is released: PostgreSQL processes
//     invalidation messages after it acquires a relation lock, so the writer's
//     statement sees the new trigger and fails. A trigger, unlike the lock,
//     is in the catalog: it outlives this session and a crash of our process
//     or of PostgreSQL, until unfence() drops it.
//  3. A transactional logical-decoding message (`pg_logical_emit_message`,
//     prefix `heliosdb_fence`, the fence id as content), written after every
//     lock is held: every transaction that wrote the tenant's tables committed
//     before it in the WAL, and decoding delivers transactions in commit
//     order. Its LSN is the fence's final LSN: once a replication's applied
//     position reaches it, the target holds every write acknowledged before
//     the fence. The message makes the transaction one the stream delivers
//     (pgoutput skips transactions without changes it publishes), so the
//     applied position passes it without waiting for a heartbeat; being
//     transactional, it is never decoded if the fence rolls back. The
//     source's pg_current_wal_lsn() would not do: WAL is cluster-wide, and
//     other databases' writes move it past anything this slot will deliver.
//
// Why 25006: it is what a client sees when it writes to a standby or a
// demoted primary ("cannot execute INSERT in a read-only transaction"), and
// drivers, poolers and failover-aware clients already treat it as "this is
// not the primary: find the new one and retry there". A serialization
// failure (40001) would invite a retry on the same server, which would fail
// forever. The message names the fence and says "follow routing".
//
// The trigger fires in the default session_replication_role (origin): a
// session in `replica` role (logical replication apply, a superuser restoring
// data) is not fenced, which lets a reverse replication write to the old
// primary. Writes that need no ROW EXCLUSIVE lock on the table (nextval() on a
// sequence, writes to tables outside the set) are not fenced.
import { randomUUID } from "node:crypto";
import pg from "pg";
import { sqlStateOf } from "../failure";
import { qualified } from "../source/publication";
import { parseLsn, type Lsn } from "../types";
import { beginQuick, cancelAutovacuum, DEADLOCK, heldBy, TIMED_OUT } from "./table-locks";
import { open, resolveTables, type ResolvedTable, type TenantDatabase } from "./tables";

/** The SQLSTATE a fenced write fails with: read_only_sql_transaction. */
export const FENCE_SQLSTATE = "25006";
/** The fence trigger's name on each table. */
export const FENCE_TRIGGER = "heliosdb_fence";
/** The prefix of the logical-decoding message that marks a fence in the WAL. */
export const FENCE_MESSAGE_PREFIX = "heliosdb_fence";
// Versioned: a changed body gets a new name rather than replacing one that fences in use call.
const FENCE_FUNCTION = "heliosdb_replication.fence_v1";

export interface FenceOptions {
  /** Names the fence in refused writes' messages and in the WAL message (default: a random UUID). */
  fenceId?: string;
  /**
   * How long the fence may wait, in all, for writers in flight (default
   * 5000 ms). Past it the fence fails with a FenceError and leaves nothing behind.
   */
  lockTimeoutMs?: number;
}

export interface Fence {
  fenceId: string;
  /** Drain the applier to this position: it covers every write acknowledged before the fence. */
  finalLsn: Lsn;
  /** When the lock was asked for (this process's clock): from then on new writers wait. */
  blockingSince: Date;
  /** When the fence committed (this process's clock): from then on writers fail with 25006. */
  fencedAt: Date;
  /** Every table fenced, partitions and children included, schema-qualified. */
  tables: string[];
  /**
   * What held a table past its step, for each attempt that met one (the
   * sessions that held it then: backend type, state and the start of their
   * query). Empty when the first attempt fenced: what a slow fence waited for.
   */
  contention: string[];
}

/** The fence could not be put up (or taken down) in time; nothing of it is left. */
export class FenceError extends Error {
  override readonly name = "FenceError";
  constructor(
    message: string,
    /** lock_timeout: writers in flight held their locks past the timeout. */
    readonly reason: "lock_timeout",
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Fences `tables` (names in `source.schema`) against writes; see the file's header. */
export async function fence(source: TenantDatabase, tables: readonly string[], options: FenceOptions = {}): Promise<Fence> {
  const fenceId = options.fenceId ?? randomUUID();
  const budgetMs = options.lockTimeoutMs ?? 5_000;
  const client = await open(source, "heliosdb_fence");
  try {
    const resolved = await resolveTables(client, source.schema, tables);
    const named = resolved.filter((t) => t.named);
    await ensureFenceFunction(client);
    const begin = await beginQuick(client);
    await cancelAutovacuum(client, resolved);
    const blockingSince = new Date();
    const deadline = Date.now() + budgetMs;
    let order = named;
    const contention: string[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        const stepMs = STEP_MS * 2 ** Math.min(attempt, 10);
        return { fenceId, blockingSince, contention, ...(await fenceOnce(client, begin, named, order, fenceId, deadline, stepMs)) };
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        // A table held past its step: the next attempt waits for it first, holding nothing. What held it is kept
        // (evidence for a slow fence), and an autovacuum that began since the one before the fence is cancelled.
        if (e instanceof Contended && Date.now() < deadline) {
          contention.push(`${e.table.table}: ${(await heldBy(client, e.table)) ?? "released by then"}`);
          await cancelAutovacuum(client, resolved);
          order = [e.table, ...order.filter((t) => t !== e.table)];
          continue;
        }
        const code = sqlStateOf(e instanceof Contended ? e.cause : e) ?? "";
        // PostgreSQL broke a deadlock by ending our transaction: the writer goes on and commits; try again within the budget.
        if (code === DEADLOCK && Date.now() < deadline) continue;
        if (TIMED_OUT.has(code) || code === DEADLOCK) {
          throw new FenceError(`fence ${fenceId}: writers in flight held the tenant's tables past ${budgetMs} ms; nothing was fenced`, "lock_timeout", {
            cause: e instanceof Contended ? e.cause : e,
          });
        }
        throw e;
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

// The first wait for a table other than the first of an attempt (see the file's header).
const STEP_MS = 100;

// A table of the attempt was not granted within its step.
class Contended extends Error {
  constructor(
    readonly table: ResolvedTable,
    override readonly cause: unknown,
  ) {
    super(`${table.table} was held past the fence's step`);
  }
}

// One attempt: the tables locked in `order` (the first waited for as long as
// the budget allows, each other one a step), then the triggers and the message.
async function fenceOnce(
  client: pg.Client,
  begin: string,
  named: ResolvedTable[],
  order: ResolvedTable[],
  fenceId: string,
  deadline: number,
  stepMs: number,
): Promise<Omit<Fence, "fenceId" | "blockingSince" | "contention">> {
  const left = () => Math.max(1, deadline - Date.now());
  // statement_timeout too: lock_timeout bounds each lock's wait, not the statement's.
  await client.query(
    `${begin} SET LOCAL lock_timeout = ${left()}; SET LOCAL statement_timeout = ${left()};
     LOCK TABLE ${qualified(order[0]!)} IN EXCLUSIVE MODE`,
  );
  for (const table of order.slice(1)) {
    try {
      await client.query(`SET LOCAL lock_timeout = ${Math.min(stepMs, left())}; LOCK TABLE ${qualified(table)} IN EXCLUSIVE MODE`);
    } catch (e) {
      const code = sqlStateOf(e) ?? "";
      if (TIMED_OUT.has(code) || code === DEADLOCK) throw new Contended(table, e);
      throw e;
    }
  }
  // Under the lock (which also covers partitions and children) the set cannot change: it is read again, and
  // fenced, from there — in the statement that also writes the message and commits (one round trip while writes wait).
  const tree = `WITH RECURSIVE tree AS (
      SELECT unnest(ARRAY[${named.map((t) => t.oid).join(",")}]::oid[]) AS oid
      UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
    SELECT c.oid, s.nspname AS schema, c.relname AS table
      FROM tree JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace s ON s.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')`;
  const trigger = `CREATE OR REPLACE TRIGGER ${FENCE_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s
    FOR EACH STATEMENT EXECUTE FUNCTION ${FENCE_FUNCTION}(%L)`;
  const results = (await client.query(
    `DO $fence$ DECLARE r record; BEGIN
       FOR r IN ${tree} LOOP EXECUTE format(${pg.escapeLiteral(trigger)}, r.oid::regclass, ${pg.escapeLiteral(fenceId)}); END LOOP;
     END $fence$;
     ${tree};
     SELECT pg_logical_emit_message(true, ${pg.escapeLiteral(FENCE_MESSAGE_PREFIX)}, ${pg.escapeLiteral(fenceId)})::text AS lsn;
     COMMIT`,
  )) as unknown as pg.QueryResult<Record<string, string | number>>[];
  const fencedAt = new Date();
  const [all, emitted] = results.filter((r) => r.command === "SELECT");
  // The named tables first, in their order, then the partitions and children by name (as resolveTables orders them).
  const position = new Map(named.map((t, i) => [t.oid, i]));
  const key = (r: Record<string, string | number>) => [position.get(Number(r.oid)) ?? named.length, String(r.schema), String(r.table)] as const;
  const byKey = (a: Record<string, string | number>, b: Record<string, string | number>) => {
    const [x, y] = [key(a), key(b)];
    return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) || (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0);
  };
  const tables = all!.rows.sort(byKey).map((r) => `${r.schema}.${r.table}`);
  return { finalLsn: parseLsn(String(emitted!.rows[0]!.lsn)), fencedAt, tables };
}

// The function every fence trigger calls, created once per database in a
// transaction of its own (before any lock is asked for). Two sessions
// creating it at once: the loser finds it made.
async function ensureFenceFunction(client: pg.Client): Promise<void> {
  const exists = async () => (await client.query("SELECT to_regprocedure($1) IS NOT NULL AS ok", [`${FENCE_FUNCTION}()`])).rows[0].ok as boolean;
  for (let attempt = 0; !(await exists()); attempt++) {
    try {
      await client.query(`BEGIN;
        CREATE SCHEMA IF NOT EXISTS heliosdb_replication;
        CREATE FUNCTION ${FENCE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fence$
        BEGIN
          RAISE EXCEPTION USING
            ERRCODE = '${FENCE_SQLSTATE}',
            MESSAGE = format('%s on %I.%I refused: the tenant''s writes are fenced by heliosdb fence %s while it moves to a new primary; follow routing',
                             TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0]),
            HINT = 'Follow routing to the tenant''s new primary (GetTenantRouting, WatchTenantRouting) and retry the transaction there.';
        END
        $fence$;
        COMMENT ON FUNCTION ${FENCE_FUNCTION}() IS 'HeliosDB cutover fence: refuses writes to a fenced tenant table with SQLSTATE ${FENCE_SQLSTATE}';
        COMMIT`);
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      // unique_violation, duplicate_function, duplicate_schema: another session made it meanwhile.
      if (attempt > 2 || !["23505", "42723", "42P06"].includes(sqlStateOf(e) ?? "")) throw e;
    }
  }
}

/**
 * Whether any table of the database's schema carries an enabled fence
 * trigger: a database failed back to is an old primary, fenced by the
 * cutover that demoted it, and refuses writes until its promotion lifts the
 * fence (which must wait for the fence on the source, else the tenant has
 * two primaries).
 */
export async function isFenced(database: TenantDatabase): Promise<boolean> {
  const client = await open(database, "heliosdb_fenced");
  try {
    const { rows } = await client.query(
      `SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE t.tgname = $1 AND t.tgenabled <> 'D' AND n.nspname = $2 LIMIT 1`,
      [FENCE_TRIGGER, database.schema],
    );
    return rows.length > 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}
