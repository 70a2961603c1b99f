// 1. Initial sync: the engine's copy of a table against a raw COPY pipe and a
// native subscription's copy, on the same table.
import { pipeline as streamPipeline } from "node:stream/promises";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import { clearTrace } from "./trace";
import { round } from "./util";
import {
  ROWS,
  log,
  COLUMNS,
  SOURCE_TABLE,
  TARGET_TABLE,
  rowsSelect,
  source,
  target,
  dbCounter,
  traceReport,
  cpuMeter,
  until,
  freshDb,
  dropDb,
  withClient,
  one,
  type Config,
  engine,
} from "./kit";

export interface Timed {
  seconds: number;
  rowsPerSecond: number;
  extra?: Record<string, number | string>;
}

export const SYNC_SOURCE = "sync_source";

export async function seedSyncSource(): Promise<{ pages: number; heapBytes: number; textBytesPerRow: number }> {
  await source.createDatabase(SYNC_SOURCE);
  return withClient(source, SYNC_SOURCE, async (c) => {
    await c.query(SOURCE_TABLE);
    await c.query(`INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("1", String(ROWS))}`);
    // Analyzed (the engine splits tables by their page count), frozen and hinted, and read once into cache: every run below reads the same warm table.
    await c.query("VACUUM (FREEZE, ANALYZE) users");
    await c.query("CREATE PUBLICATION bench_native FOR TABLE users");
    const size = await one<string>(c, "SELECT pg_size_pretty(pg_relation_size('users'))");
    const copyBytes = await one<string>(c, "SELECT avg(length(u::text))::int FROM (SELECT * FROM users LIMIT 10000) u");
    const pages = await one<number>(c, "SELECT relpages FROM pg_class WHERE relname = 'users'");
    const heapBytes = Number(await one(c, "SELECT pg_relation_size('users')"));
    log(`source: ${ROWS.toLocaleString("en-US")} rows, heap ${size} (${pages} pages), ~${copyBytes} bytes a row as text`);
    return { pages, heapBytes, textBytesPerRow: Number(copyBytes) };
  });
}

export async function syncCopyPipe(): Promise<Timed> {
  const db = await freshDb(target, "sync_pipe");
  await withClient(target, db, (c) => c.query(TARGET_TABLE));
  const cpu = cpuMeter();
  const t0 = performance.now();
  const [src, dst] = await Promise.all([source.connect(SYNC_SOURCE), target.connect(db)]);
  const list = COLUMNS.join(", ");
  await streamPipeline(src.query(copyTo(`COPY (SELECT ${list} FROM users) TO STDOUT`)), dst.query(copyFrom(`COPY users (${list}) FROM STDIN`)));
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu();
  const count = Number(await one(dst, "SELECT count(*) FROM users"));
  await Promise.all([src.end(), dst.end()]);
  if (count !== ROWS) throw new Error(`copy pipe: ${count} rows on the target, expected ${ROWS}`);
  await dropDb(target, db);
  return { seconds, rowsPerSecond: ROWS / seconds, extra: used };
}

export async function syncNative(): Promise<Timed> {
  const db = await freshDb(target, "sync_native");
  const sub = `bench_sub_${dbCounter}`;
  const dst = await target.connect(db);
  await dst.query(TARGET_TABLE);
  const cpu = cpuMeter();
  const t0 = performance.now();
  await dst.query(`CREATE SUBSCRIPTION ${sub} CONNECTION '${source.url(SYNC_SOURCE)}' PUBLICATION bench_native WITH (copy_data = true)`);
  let copied = 0;
  await until(async () => {
    const state = await one<string>(dst, "SELECT srsubstate FROM pg_subscription_rel");
    if (state !== "r" && state !== "s") return false;
    copied ||= performance.now();
    if (state !== "r") return false;
    return Number(await one(dst, "SELECT count(*) FROM users")) === ROWS;
  }, "the native subscription's table sync");
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu();
  await dst.query(`DROP SUBSCRIPTION ${sub}`);
  await dst.end();
  await dropDb(target, db);
  return { seconds, rowsPerSecond: ROWS / seconds, extra: { synced_s: round((copied - t0) / 1000) ?? 0, ...used } };
}

export async function syncEngine(config: Config, parallelism: number): Promise<Timed> {
  const db = await freshDb(target, "sync_engine");
  const e = engine(SYNC_SOURCE, db, config);
  clearTrace();
  const cpu = cpuMeter();
  const t0 = performance.now();
  await e.pipeline.start({ initialSyncParallelism: parallelism });
  await until(() => {
    e.check();
    const f = e.pipeline.read();
    return f.status === "Streaming" && f.initialSync.length > 0 && f.initialSync.every((t) => t.completed);
  }, "the engine's initial sync");
  const seconds = (performance.now() - t0) / 1000;
  const used = cpu();
  traceReport(`the engine's initial sync (parallelism ${parallelism})`, seconds);
  const figures = e.pipeline.read();
  await e.pipeline.whenStreaming();
  await e.pipeline.stop();
  const count = Number(await withClient(target, db, (c) => one(c, "SELECT count(*) FROM users")));
  if (count !== ROWS) throw new Error(`engine: ${count} rows on the target, expected ${ROWS}`);
  await dropDb(target, db);
  return { seconds, rowsPerSecond: ROWS / seconds, extra: { rows_copied: figures.initialSync.reduce((n, t) => n + t.rowsCopied, 0), ...used } };
}
