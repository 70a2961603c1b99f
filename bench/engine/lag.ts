// 3. Lag: a steady writer on the source, a poller on the target that samples
// now − the newest replicated row's written_at, the engine against a native
// subscription.
import { parseLsn } from "../../packages/engine/src/index";
import { percentile } from "./util";
import {
  LAG_SECONDS,
  LAG_ROWS_PER_TICK,
  LAG_TICK_MS,
  LAG_POLL_MS,
  FIGURES_POLL_MS,
  TARGET_TABLE,
  LAG_POLLER,
  source,
  target,
  dbCounter,
  cpuMeter,
  until,
  dropDb,
  withClient,
  one,
  PLAIN_PREMIUM,
  engine,
  cdcDatabases,
} from "./kit";

export interface LagResult {
  p50: number;
  p99: number;
  max: number;
  samples: number;
  figureP50?: number;
  figureP99?: number;
  figureMax?: number;
  /** Mean of the figure-based lag over the first and the last quarter of the run. */
  figureFirstQuarter?: number;
  figureLastQuarter?: number;
  /** The figure once the engine's checkpoint passed the source's position after the writer stopped. */
  figureAfterCaughtUp?: number;
  rowsWritten: number;
  cpu: Record<string, number>;
}

/** Runs the steady writer on the source and the poller on the target for LAG_SECONDS; returns the poller's samples. */
export async function steadyLoad(sourceDb: string, targetDb: string, during?: () => void): Promise<{ lags: number[]; rowsWritten: number; cpu: Record<string, number> }> {
  const [writer, poller] = await Promise.all([source.connect(sourceDb), target.connect(targetDb)]);
  await poller.query(LAG_POLLER);
  const duration = LAG_SECONDS * 1000;
  let sampling: NodeJS.Timeout | undefined;
  if (during) sampling = setInterval(during, FIGURES_POLL_MS);
  const meter = cpuMeter();
  await Promise.all([
    writer.query("CALL steady_writer(1, $1, $2, $3)", [LAG_ROWS_PER_TICK, LAG_TICK_MS, duration]),
    poller.query("CALL lag_poller($1, $2)", [LAG_POLL_MS, duration]),
  ]);
  clearInterval(sampling);
  const cpu = meter();
  const rowsWritten = Number(await one(writer, "SELECT count(*) FROM users"));
  const lags = (await poller.query<{ lag_ms: number }>("SELECT lag_ms FROM bench_lag ORDER BY at")).rows.map((r) => r.lag_ms);
  await Promise.all([writer.end(), poller.end()]);
  return { lags, rowsWritten, cpu };
}

export async function lagEngine(): Promise<LagResult> {
  const { sourceDb, targetDb } = await cdcDatabases("lag_engine");
  const e = engine(sourceDb, targetDb, PLAIN_PREMIUM);
  await e.pipeline.start({ initialSyncParallelism: 4 });
  await e.pipeline.whenStreaming();
  const figureLags: number[] = [];
  const { lags, rowsWritten, cpu } = await steadyLoad(sourceDb, targetDb, () => figureLags.push(e.pipeline.read().lagSeconds * 1000));
  e.check();
  // Once everything is applied, the figure should read 0.
  const endLsn = parseLsn(await withClient(source, sourceDb, (c) => one<string>(c, "SELECT pg_current_wal_lsn()::text")));
  await until(() => (e.pipeline.read().lastCheckpoint?.lsn ?? 0n) >= endLsn, "the engine to catch up after the lag run", 60_000);
  const figureAfterCaughtUp = e.pipeline.read().lagSeconds * 1000;
  await e.pipeline.stop();
  await Promise.all([dropDb(source, sourceDb), dropDb(target, targetDb)]);
  const quarter = Math.max(1, Math.floor(figureLags.length / 4));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    p50: percentile(lags, 50),
    p99: percentile(lags, 99),
    max: Math.max(...lags),
    samples: lags.length,
    figureFirstQuarter: mean(figureLags.slice(0, quarter)),
    figureLastQuarter: mean(figureLags.slice(-quarter)),
    figureAfterCaughtUp,
    cpu,
    figureP50: percentile(figureLags, 50),
    figureP99: percentile(figureLags, 99),
    figureMax: Math.max(...figureLags),
    rowsWritten,
  };
}

export async function lagNative(): Promise<LagResult> {
  const { sourceDb, targetDb } = await cdcDatabases("lag_native");
  const sub = `bench_sub_${dbCounter}`;
  await withClient(source, sourceDb, (c) => c.query("CREATE PUBLICATION bench_native FOR TABLE users"));
  await withClient(target, targetDb, async (c) => {
    await c.query(TARGET_TABLE);
    await c.query(`CREATE SUBSCRIPTION ${sub} CONNECTION '${source.url(sourceDb)}' PUBLICATION bench_native WITH (copy_data = false)`);
  });
  await withClient(source, sourceDb, (c) =>
    until(async () => (await c.query("SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", [sub])).rowCount === 1, "the subscription to stream"),
  );
  const { lags, rowsWritten, cpu } = await steadyLoad(sourceDb, targetDb);
  await withClient(target, targetDb, (c) => c.query(`DROP SUBSCRIPTION ${sub}`));
  await Promise.all([dropDb(source, sourceDb), dropDb(target, targetDb)]);
  return { p50: percentile(lags, 50), p99: percentile(lags, 99), max: Math.max(...lags), samples: lags.length, rowsWritten, cpu };
}
