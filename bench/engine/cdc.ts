// 2. CDC apply: changes generated on the source (10,000-row or single-row
// transactions) until the last is on the target, the engine against a native
// subscription.
import pg from "pg";
import { parseLsn } from "../../packages/engine/src/index";
import { clearTrace } from "./trace";
import { round } from "./util";
import { TARGET_TABLE, source, target, dbCounter, traceReport, cpuMeter, until, dropDb, one, type Config, engine, cdcDatabases } from "./kit";
import type { Timed } from "./sync";

export interface CdcResult extends Timed {
  /** Seconds the source took to commit the changes. */
  generationSeconds: number;
  /** Seconds from the last commit on the source until the replica applied it. */
  catchUpSeconds: number;
}

/** A fresh source database with an empty users table and the generators, and a fresh target database. */
/**
 * Whether the last generated row is committed on the target. The changes are
 * generated in id order and applied in commit order (the engine in atomic
 * batches), so the last row's arrival means every change arrived. A point
 * lookup: max(id) would walk every uncommitted index entry of the applier's
 * open transaction, and cost the target's CPU what the replica needs.
 */
export async function lastRowVisible(c: pg.Client, id: number): Promise<boolean> {
  return (await c.query("SELECT 1 FROM users WHERE id = $1", [id])).rowCount === 1;
}

/** Commits `rows` inserts on the source, in transactions of `perTx` rows (1: single-row). */
export async function generate(src: pg.Client, rows: number, perTx: number, cpu: { meter?: () => Record<string, number> }): Promise<{ endLsn: bigint; t0: number; t1: number }> {
  cpu.meter = cpuMeter();
  const t0 = performance.now();
  if (perTx === 1) await src.query("CALL gen_one_row_txs(1, $1)", [rows]);
  else await src.query("CALL gen_changes(1, $1, $2)", [rows, perTx]);
  const t1 = performance.now();
  const endLsn = parseLsn(await one<string>(src, "SELECT pg_current_wal_lsn()::text"));
  return { endLsn, t0, t1 };
}

export async function cdcNative(rows: number, perTx: number): Promise<CdcResult> {
  const { sourceDb, targetDb } = await cdcDatabases("cdc_native");
  const sub = `bench_sub_${dbCounter}`;
  const src = await source.connect(sourceDb);
  const dst = await target.connect(targetDb);
  await src.query("CREATE PUBLICATION bench_native FOR TABLE users");
  await dst.query(TARGET_TABLE);
  await dst.query(`CREATE SUBSCRIPTION ${sub} CONNECTION '${source.url(sourceDb)}' PUBLICATION bench_native WITH (copy_data = false)`);
  await until(
    async () => (await src.query("SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", [sub])).rowCount === 1,
    "the subscription to stream",
  );
  let applied = 0;
  let used: Record<string, number> = {};
  const cpu: { meter?: () => Record<string, number> } = {};
  const watching = until(async () => {
    if (!(await lastRowVisible(dst, rows))) return false;
    applied = performance.now();
    used = cpu.meter!();
    return true;
  }, "the native subscription to apply every change");
  const { t0, t1 } = await generate(src, rows, perTx, cpu);
  await watching;
  const count = Number(await one(dst, "SELECT count(*) FROM users"));
  if (count !== rows) throw new Error(`native: ${count} rows on the target, expected ${rows}`);
  await dst.query(`DROP SUBSCRIPTION ${sub}`);
  await Promise.all([src.end(), dst.end()]);
  await Promise.all([dropDb(source, sourceDb), dropDb(target, targetDb)]);
  const seconds = (applied - t0) / 1000;
  return { seconds, rowsPerSecond: rows / seconds, generationSeconds: (t1 - t0) / 1000, catchUpSeconds: Math.max(0, (applied - t1) / 1000), extra: used };
}

export async function cdcEngine(rows: number, perTx: number, config: Config): Promise<CdcResult> {
  const { sourceDb, targetDb } = await cdcDatabases("cdc_engine");
  const e = engine(sourceDb, targetDb, config);
  await e.pipeline.start({ initialSyncParallelism: 4 });
  await e.pipeline.whenStreaming();
  clearTrace();
  const src = await source.connect(sourceDb);
  const dst = await target.connect(targetDb);
  // The last row visible on the target (cross-check), and the checkpoint past the source's LSN after generation (the measure).
  let visible = 0;
  let applied = 0;
  let endLsn: bigint | undefined;
  let used: Record<string, number> = {};
  const cpu: { meter?: () => Record<string, number> } = {};
  const watching = until(async () => {
    e.check();
    if (!visible && (await lastRowVisible(dst, rows))) visible = performance.now();
    if (!applied && endLsn !== undefined && (e.pipeline.read().lastCheckpoint?.lsn ?? 0n) >= endLsn) applied = performance.now();
    if (applied > 0 && visible > 0) used = cpu.meter!();
    return applied > 0 && visible > 0;
  }, "the engine to apply every change");
  const generated = await generate(src, rows, perTx, cpu);
  endLsn = generated.endLsn;
  await watching;
  traceReport(`the engine's CDC run (${perTx}-row transactions)`, (applied - generated.t0) / 1000);
  const figures = e.pipeline.read();
  await e.pipeline.stop();
  const count = Number(await one(dst, "SELECT count(*) FROM users"));
  if (count !== rows) throw new Error(`engine: ${count} rows on the target, expected ${rows}`);
  await Promise.all([src.end(), dst.end()]);
  await Promise.all([dropDb(source, sourceDb), dropDb(target, targetDb)]);
  const { t0, t1 } = generated;
  const seconds = (applied - t0) / 1000;
  return {
    seconds,
    rowsPerSecond: rows / seconds,
    generationSeconds: (t1 - t0) / 1000,
    catchUpSeconds: Math.max(0, (applied - t1) / 1000),
    extra: {
      visible_s: round((visible - t0) / 1000) ?? 0,
      transactions: figures.totalTransactions,
      compression_ratio: round(figures.compressionRatio, 2) ?? 1,
      ...used,
    },
  };
}
