// The engine benchmark: initial sync, CDC apply and lag of ReplicationPipeline,
// each run beside a baseline (a raw COPY pipe, PostgreSQL's own logical
// replication) on the same data and the same two clusters, in the same run.
// Prints progress, a table, and as its last line one JSON object of results.
//
//   npm run bench:engine              full run (1M rows, 20 s of lag)
//   npm run bench:engine -- --quick   100k rows, 5 s of lag: checks it works
//   npm run bench:engine -- --only=tenants   1, 10 and 100 small replications on one node (tenants.ts)
//
// Options: --rev=<commit> (run.mjs: measure that commit's engine sources),
// --trace-queries (where each engine run's wall time went), and for
// development --rows=N --cdc-rows=N --single-rows=N --lag-seconds=S --reps=N
// --tenants=1,10,100 --tenant-seconds=S --tenant-rest-seconds=S
// --tenant-tier=premium|standard --only=sync,cdc,single,lag,spec,tenants.
// Results: docs/benchmarks.md.
import { randomBytes, randomUUID } from "node:crypto";
import os from "node:os";
import { pipeline as streamPipeline } from "node:stream/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  AnonymizePIITransform_AnonymizationMethod as Method,
  CompressionConfig_CompressionLevel as Level,
  QoSTier,
  ReplicationConfigSchema,
} from "@heliosdb/replication-proto";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import { MasterKeyProvider, ReplicationPipeline, parseLsn, type EngineEvent, type ReplicationSpec } from "../../packages/engine/src/index";
import { startCluster, type Cluster } from "../../packages/engine/src/testing/clusters";
import { cpuMeter as meterOf, findPostmaster, machineBusy } from "./cpu";
import { TENANT_CLUSTER_FLAGS, TENANT_TABLE_HEADER, seedTenantTemplate, tenantsCase, type TenantKit } from "./tenants";
import { clearTrace, startTracing, traceReport as reportTrace } from "./trace";
import { percentile, round, sleep } from "./util";

// ---------------------------------------------------------------- settings

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
const QUICK = args.has("quick");
const num = (name: string, full: number, quick: number) => Number(args.get(name) ?? (QUICK ? quick : full));
/** Rows of the initial sync table. */
const ROWS = num("rows", 1_000_000, 100_000);
/** Row changes of the CDC runs in 10k-row transactions. */
const CDC_ROWS = num("cdc-rows", 1_000_000, 100_000);
const CDC_TX_ROWS = 10_000;
/** Single-row transactions of the CDC runs. */
const SINGLE_ROWS = num("single-rows", 1_000_000, 100_000);
/** The steady writer of the lag run: ROWS_PER_TICK rows every TICK_MS. */
const LAG_SECONDS = num("lag-seconds", 20, 5);
const LAG_ROWS_PER_TICK = 100;
const LAG_TICK_MS = 10;
const LAG_POLL_MS = 20;
const FIGURES_POLL_MS = 50;
/** Runs of each initial sync (engine and baselines interleaved); the median is reported. */
const SYNC_REPS = num("reps", 3, 3);
/** Many tenants on one node: how many replications, how long at rest and under load, and their QoS tier. */
const TENANTS = (args.get("tenants") ?? (QUICK ? "1,10" : "1,10,100")).split(",").map(Number);
const TENANT_SECONDS = num("tenant-seconds", 20, 5);
const TENANT_REST_SECONDS = num("tenant-rest-seconds", 10, 5);
const TENANT_TIER = args.get("tenant-tier") ?? "premium";
const ONLY = new Set((args.get("only") ?? "sync,cdc,single,lag,spec,tenants").split(","));

const started = Date.now();
const keys = new MasterKeyProvider(randomBytes(32));
const TENANT = "tenant-123";

// ---------------------------------------------------------------- output

const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const fmtRate = (x: number) => `${Math.round(x).toLocaleString("en-US")}`;

// ---------------------------------------------------------------- schema

// ~200 bytes a row in COPY text (and about as much on the heap): a bigint key,
// text columns (three of them PII), a numeric, a longer text and a timestamp.
const COLUMNS = ["id", "name", "email", "phone", "ssn", "region", "balance", "bio", "written_at"] as const;
const COLUMN_DEFS = `id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, phone text NOT NULL, ssn text NOT NULL,
  region text NOT NULL, balance numeric(14,2) NOT NULL, bio text NOT NULL, written_at timestamptz NOT NULL`;
/** The source table; written_at defaults to the time each row is written. */
const SOURCE_TABLE = `CREATE TABLE users (${COLUMN_DEFS} DEFAULT clock_timestamp())`;
/** The target table as the engine creates it (same columns, key and NOT NULLs), for the baselines. */
const TARGET_TABLE = `CREATE TABLE users (${COLUMN_DEFS})`;
/** Rows g in [a, b]. */
const rowsSelect = (a: string, b: string) => `
  SELECT g, 'user ' || g, 'user' || g || '@example.com', '+1-555-' || lpad((g % 10000000)::text, 7, '0'),
         lpad((g * 7919 % 1000000000)::text, 9, '0'), (ARRAY['us', 'eu', 'ap'])[1 + g % 3], round((g % 100000) * 1.37, 2),
         md5(g::text) || ' ' || md5((g + 1)::text) || ' lorem ipsum dolor sit amet', clock_timestamp()
    FROM generate_series((${a})::bigint, (${b})::bigint) g`;

// Server-side generators: no client round trip per transaction.
const PROCEDURES = `
  CREATE PROCEDURE gen_changes(first bigint, total bigint, per_tx int) LANGUAGE plpgsql AS $$
  DECLARE
    i bigint := first;
  BEGIN
    WHILE i < first + total LOOP
      INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("i", "least(i + per_tx, first + total) - 1")};
      COMMIT;
      i := i + per_tx;
    END LOOP;
  END $$;
  CREATE PROCEDURE gen_one_row_txs(first bigint, total bigint) LANGUAGE plpgsql AS $$
  BEGIN
    FOR i IN first .. first + total - 1 LOOP
      INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("i", "i")};
      COMMIT;
    END LOOP;
  END $$;
  -- rows_per_tick rows (one statement, one transaction) every tick_ms, on a fixed schedule.
  CREATE PROCEDURE steady_writer(first bigint, rows_per_tick int, tick_ms int, duration_ms int) LANGUAGE plpgsql AS $$
  DECLARE
    t0 timestamptz := clock_timestamp();
    k int := 0;
    wait float8;
  BEGIN
    WHILE clock_timestamp() < t0 + duration_ms * interval '1 ms' LOOP
      INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("first + k * rows_per_tick", "first + (k + 1) * rows_per_tick - 1")};
      COMMIT;
      k := k + 1;
      wait := extract(epoch FROM t0 + k * tick_ms * interval '1 ms' - clock_timestamp());
      IF wait > 0 THEN PERFORM pg_sleep(wait); END IF;
    END LOOP;
  END $$;`;

// On the target: every poll_ms, now − the written_at of the newest replicated row.
const LAG_POLLER = `
  CREATE TABLE bench_lag (at timestamptz NOT NULL, lag_ms float8 NOT NULL);
  CREATE PROCEDURE lag_poller(poll_ms int, duration_ms int) LANGUAGE plpgsql AS $$
  DECLARE
    t0 timestamptz := clock_timestamp();
    newest timestamptz;
  BEGIN
    WHILE clock_timestamp() < t0 + duration_ms * interval '1 ms' LOOP
      SELECT written_at INTO newest FROM users ORDER BY id DESC LIMIT 1;
      IF newest IS NOT NULL THEN
        INSERT INTO bench_lag VALUES (clock_timestamp(), extract(epoch FROM clock_timestamp() - newest) * 1000);
      END IF;
      COMMIT;
      PERFORM pg_sleep(poll_ms / 1000.0);
    END LOOP;
  END $$;`;

// ---------------------------------------------------------------- helpers

let source!: Cluster;
let target!: Cluster;
let dbCounter = 0;

if (args.has("trace-queries")) startTracing();
const traceReport = (what: string, wallSeconds: number) => reportTrace(log, what, wallSeconds);
/** CPU seconds of the source and target clusters and of this process from now on (cpu.ts). */
const cpuMeter = () => meterOf({ source, target });

/** Polls `check` every `everyMs` until it returns true; fails after `ms`. */
async function until(check: () => Promise<boolean> | boolean, what: string, ms = 1_800_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function freshDb(cluster: Cluster, prefix: string): Promise<string> {
  const name = `${prefix}_${++dbCounter}`;
  await cluster.createDatabase(name);
  return name;
}

async function dropDb(cluster: Cluster, name: string): Promise<void> {
  const c = await cluster.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

async function withClient<T>(cluster: Cluster, db: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await cluster.connect(db);
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

const one = async <T = string>(c: pg.ClientBase, sql: string, params: unknown[] = []): Promise<T> =>
  Object.values((await c.query(sql, params)).rows[0] ?? {})[0] as T;


// ---------------------------------------------------------------- engine

type Config = MessageInitShape<typeof ReplicationConfigSchema>;

/** What the baselines do: no transforms, compression or encryption. */
const PLAIN_STANDARD: Config = { qosTier: QoSTier.STANDARD, maxLagSeconds: 5 };
const PLAIN_PREMIUM: Config = { qosTier: QoSTier.PREMIUM, maxLagSeconds: 5 };
/**
 * The spec's §2.1.1 request config. Its table_filter names users, orders and
 * products; this benchmark's database has only `users`, and a pattern that
 * matches nothing is refused by preflight, so the filter is ["users.*"].
 */
const SPEC_2_1_1: Config = {
  qosTier: QoSTier.PREMIUM,
  maxLagSeconds: 5,
  priority: 90,
  tableFilter: ["users.*"],
  rowFilter: { enabled: false },
  transforms: [{ transformType: { case: "anonymizePii", value: { columns: ["email", "phone", "ssn"], method: Method.HASH } } }],
  compression: { enabled: true, level: Level.MEDIUM },
  encryption: { enabled: true, algorithm: "AES256GCM" },
};

interface Engine {
  pipeline: ReplicationPipeline;
  events: EngineEvent[];
  /** Throws if the engine reported an error. */
  check(): void;
}

function engine(sourceDb: string, targetDb: string, config: Config): Engine {
  const events: EngineEvent[] = [];
  const spec: ReplicationSpec = {
    replicationId: randomUUID(),
    tenantId: TENANT,
    source: { connection: { connectionString: source.url(sourceDb) }, schema: "public" },
    target: { connection: { connectionString: target.url(targetDb) }, schema: "public" },
    config: create(ReplicationConfigSchema, config),
  };
  const pipeline = new ReplicationPipeline(spec, { keys, onEvent: (e) => events.push(e) });
  return {
    pipeline,
    events,
    check() {
      const error = events.find((e) => e.severity === "Error" || e.severity === "Critical");
      if (error || pipeline.status === "Error") throw new Error(`engine failed: ${error?.message ?? pipeline.status}`);
    },
  };
}

// ---------------------------------------------------------------- 1. initial sync

interface Timed {
  seconds: number;
  rowsPerSecond: number;
  extra?: Record<string, number | string>;
}

const SYNC_SOURCE = "sync_source";

async function seedSyncSource(): Promise<{ pages: number; heapBytes: number; textBytesPerRow: number }> {
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

async function syncCopyPipe(): Promise<Timed> {
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

async function syncNative(): Promise<Timed> {
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

async function syncEngine(config: Config, parallelism: number): Promise<Timed> {
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

// ---------------------------------------------------------------- 2. CDC apply

interface CdcResult extends Timed {
  /** Seconds the source took to commit the changes. */
  generationSeconds: number;
  /** Seconds from the last commit on the source until the replica applied it. */
  catchUpSeconds: number;
}

/** A fresh source database with an empty users table and the generators, and a fresh target database. */
async function cdcDatabases(prefix: string): Promise<{ sourceDb: string; targetDb: string }> {
  const [sourceDb, targetDb] = await Promise.all([freshDb(source, `${prefix}_src`), freshDb(target, `${prefix}_dst`)]);
  await withClient(source, sourceDb, async (c) => {
    await c.query(SOURCE_TABLE);
    await c.query(PROCEDURES);
  });
  return { sourceDb, targetDb };
}

/**
 * Whether the last generated row is committed on the target. The changes are
 * generated in id order and applied in commit order (the engine in atomic
 * batches), so the last row's arrival means every change arrived. A point
 * lookup: max(id) would walk every uncommitted index entry of the applier's
 * open transaction, and cost the target's CPU what the replica needs.
 */
async function lastRowVisible(c: pg.Client, id: number): Promise<boolean> {
  return (await c.query("SELECT 1 FROM users WHERE id = $1", [id])).rowCount === 1;
}

/** Commits `rows` inserts on the source, in transactions of `perTx` rows (1: single-row). */
async function generate(src: pg.Client, rows: number, perTx: number, cpu: { meter?: () => Record<string, number> }): Promise<{ endLsn: bigint; t0: number; t1: number }> {
  cpu.meter = cpuMeter();
  const t0 = performance.now();
  if (perTx === 1) await src.query("CALL gen_one_row_txs(1, $1)", [rows]);
  else await src.query("CALL gen_changes(1, $1, $2)", [rows, perTx]);
  const t1 = performance.now();
  const endLsn = parseLsn(await one<string>(src, "SELECT pg_current_wal_lsn()::text"));
  return { endLsn, t0, t1 };
}

async function cdcNative(rows: number, perTx: number): Promise<CdcResult> {
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

async function cdcEngine(rows: number, perTx: number, config: Config): Promise<CdcResult> {
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

// ---------------------------------------------------------------- 3. lag

interface LagResult {
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
async function steadyLoad(sourceDb: string, targetDb: string, during?: () => void): Promise<{ lags: number[]; rowsWritten: number; cpu: Record<string, number> }> {
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

async function lagEngine(): Promise<LagResult> {
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

async function lagNative(): Promise<LagResult> {
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

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const cpus = os.cpus().length;
  // The tenants part alone starts its clusters (with room for 100 replications) at once; after other parts, it starts them again.
  const onlyTenants = [...ONLY].every((part) => part === "tenants");
  const r0: Record<string, number | null> = {};
  const revision = JSON.parse(process.env.BENCH_ENGINE_REVISION ?? "{}") as { commit?: string; changed?: string[]; sourcesSha256?: string };
  log(`engine benchmark${QUICK ? " (--quick)" : ""}: ${cpus} CPUs (${os.cpus()[0]?.model ?? "?"}), node ${process.version}`);
  log(
    `engine sources: commit ${revision.commit ?? "unknown"}${revision.changed?.length ? ` with uncommitted changes to ${revision.changed.join(", ")}` : ", no uncommitted change"} (bundled sources sha256 ${revision.sourcesSha256 ?? "?"})`,
  );
  {
    const before = machineBusy();
    const nodeBefore = process.cpuUsage();
    await sleep(2000);
    const used = process.cpuUsage(nodeBefore);
    const nodeUsed = (used.user + used.system) / 1e6;
    const busy = (machineBusy() - before - nodeUsed) / 2;
    r0.machine_busy_cores_before = round(busy, 2);
    log(`before starting: other processes keep ${busy.toFixed(2)} of ${cpus} cores busy${busy > 0.2 ? " (the machine is not quiet: expect skewed numbers)" : ""}`);
  }
  if (ONLY.has("tenants")) log(`tenants: ${TENANTS.join(", ")} replications of 10,000 rows, ${TENANT_REST_SECONDS} s at rest and ${TENANT_SECONDS} s at 20 writes/s each`);
  if (!onlyTenants) log(`sizes: initial sync ${ROWS.toLocaleString("en-US")} rows; CDC ${CDC_ROWS.toLocaleString("en-US")} rows in ${CDC_TX_ROWS.toLocaleString("en-US")}-row transactions and ${SINGLE_ROWS.toLocaleString("en-US")} single-row transactions; lag ${LAG_SECONDS} s at ${(LAG_ROWS_PER_TICK * 1000) / LAG_TICK_MS} rows/s`);
  const flags = ["-c", "max_wal_size=8GB", "-c", "checkpoint_timeout=30min", "-c", "max_logical_replication_workers=8", "-c", "max_worker_processes=16"];
  const firstFlags = onlyTenants ? [...flags, ...TENANT_CLUSTER_FLAGS] : flags;
  [source, target] = await Promise.all([startCluster(firstFlags), startCluster(firstFlags)]);
  const version = await withClient(source, "postgres", (c) => one<string>(c, "SHOW server_version"));
  const [sourcePm, targetPm] = await Promise.all([findPostmaster(source), findPostmaster(target)]);
  log(`postmasters: source pid ${sourcePm}, target pid ${targetPm} (for CPU accounting)`);
  log(`clusters: PostgreSQL ${version}, source :${source.port}, target :${target.port} (fsync=off, wal_level=logical)`);

  const r: Record<string, number | string | boolean | null | undefined> = {
    ...r0,
    cpus,
    quick: QUICK,
    postgres: version,
    engine_commit: revision.commit,
    engine_uncommitted_files: revision.changed?.length ?? null,
    engine_sources_sha256: revision.sourcesSha256,
    loadavg_1m_start: round(os.loadavg()[0]!, 2),
  };
  const rows: string[][] = [];
  const row = (what: string, engineT: Timed | undefined, baseline: string, base: Timed | undefined, ratio: number | undefined) =>
    rows.push([
      what,
      engineT ? engineT.seconds.toFixed(2) : "",
      engineT ? fmtRate(engineT.rowsPerSecond) : "",
      baseline,
      base ? base.seconds.toFixed(2) : "",
      base ? fmtRate(base.rowsPerSecond) : "",
      ratio !== undefined ? `${ratio.toFixed(2)}×` : "",
    ]);
  const cpuRows: string[][] = [];
  let otherCpu = 0;
  let measuredWall = 0;
  const put = (prefix: string, t: Timed) => {
    const c = t.extra as Record<string, number> | undefined;
    if (c && c.cpu_node_s !== undefined) {
      otherCpu += c.cpu_other_s ?? 0;
      measuredWall += t.seconds;
      const total = c.cpu_source_s! + c.cpu_target_s! + c.cpu_node_s;
      cpuRows.push([
        prefix,
        t.seconds.toFixed(2),
        c.cpu_source_s!.toFixed(1),
        c.cpu_target_s!.toFixed(1),
        c.cpu_node_s.toFixed(1),
        total.toFixed(1),
        (total / t.seconds).toFixed(2),
        c.cpu_other_s!.toFixed(1),
      ]);
    }
    r[`${prefix}_s`] = round(t.seconds);
    if (Number.isFinite(t.rowsPerSecond)) r[`${prefix}_rows_per_s`] = Math.round(t.rowsPerSecond);
    for (const [k, v] of Object.entries(t.extra ?? {})) r[`${prefix}_${k}`] = v;
    if ("generationSeconds" in t) {
      r[`${prefix}_generation_s`] = round((t as CdcResult).generationSeconds);
      r[`${prefix}_catch_up_s`] = round((t as CdcResult).catchUpSeconds);
    }
  };

  // 1. initial sync
  let pipe: Timed | undefined;
  let nativeSync: Timed | undefined;
  let syncRuns: Record<"pipe" | "native" | "p4" | "p1" | "spec", Timed[]> | undefined;
  let syncMedian: ((ts: Timed[]) => Timed) | undefined;
  if (ONLY.has("sync") || ONLY.has("spec")) {
    log(`seeding the source with ${ROWS.toLocaleString("en-US")} rows…`);
    const seeded = await seedSyncSource();
    r.initial_sync_heap_mb = round(seeded.heapBytes / 1e6, 1);
    r.initial_sync_text_bytes_per_row = seeded.textBytesPerRow;
    // The engine copies a table in ranges of 16384 pages, one worker per range at most.
    const ranges = Math.max(1, Math.ceil(seeded.pages / 16384));
    r.initial_sync_engine_ranges = ranges;
    log(`the engine will copy the table in ${ranges} page range(s): parallelism 4 runs ${Math.min(4, ranges)} worker(s)`);
    r.rows_initial_sync = ROWS;
    r.initial_sync_runs_each = SYNC_REPS;
    const runs: Record<"pipe" | "native" | "p4" | "p1" | "spec", Timed[]> = { pipe: [], native: [], p4: [], p1: [], spec: [] };
    const report = (what: string, t: Timed) => log(`initial sync, ${what}: ${t.seconds.toFixed(2)} s, ${fmtRate(t.rowsPerSecond)} rows/s`);
    // Interleaved, so that any drift of the machine touches every contender alike.
    for (let i = 1; i <= SYNC_REPS; i++) {
      log(`initial sync, round ${i} of ${SYNC_REPS}`);
      runs.pipe.push(await syncCopyPipe());
      report("baseline COPY pipe", runs.pipe.at(-1)!);
      runs.native.push(await syncNative());
      report("baseline native subscription", runs.native.at(-1)!);
      if (ONLY.has("sync")) {
        runs.p4.push(await syncEngine(PLAIN_STANDARD, 4));
        report("engine (parallelism 4)", runs.p4.at(-1)!);
        runs.p1.push(await syncEngine(PLAIN_STANDARD, 1));
        report("engine (parallelism 1)", runs.p1.at(-1)!);
      }
      // The §2.1.1 config in the same rounds: one run minutes after the baselines' medians moved with the host (0.98× in one full run, 0.60× in the next).
      if (ONLY.has("spec")) {
        runs.spec.push(await syncEngine(SPEC_2_1_1, 4));
        report("engine with the §2.1.1 config (parallelism 4)", runs.spec.at(-1)!);
      }
    }
    const median = (ts: Timed[]): Timed => {
      const m = [...ts].sort((a, b) => a.seconds - b.seconds)[Math.floor(ts.length / 2)]!;
      return { ...m, extra: { ...m.extra, runs_s: ts.map((t) => t.seconds.toFixed(3)).join(",") } };
    };
    pipe = median(runs.pipe);
    put("initial_sync_copy_pipe", pipe);
    nativeSync = median(runs.native);
    put("initial_sync_native_subscription", nativeSync);
    syncRuns = runs;
    syncMedian = median;
  }
  if (ONLY.has("sync")) {
    const p4 = syncMedian!(syncRuns!.p4);
    put("initial_sync_engine_p4", p4);
    const p1 = syncMedian!(syncRuns!.p1);
    put("initial_sync_engine_p1", p1);
    log(`initial sync, medians of ${SYNC_REPS}: COPY pipe ${pipe!.seconds.toFixed(2)} s, native ${nativeSync!.seconds.toFixed(2)} s, engine p4 ${p4.seconds.toFixed(2)} s, engine p1 ${p1.seconds.toFixed(2)} s`);
    r.initial_sync_vs_copy_pipe = round(p4.rowsPerSecond / pipe!.rowsPerSecond);
    r.initial_sync_vs_native_subscription = round(p4.rowsPerSecond / nativeSync!.rowsPerSecond);
    r.initial_sync_p1_vs_copy_pipe = round(p1.rowsPerSecond / pipe!.rowsPerSecond);
    r.initial_sync_p1_vs_native_subscription = round(p1.rowsPerSecond / nativeSync!.rowsPerSecond);
    row("initial sync, engine p4 vs COPY pipe", p4, "COPY pipe", pipe, p4.rowsPerSecond / pipe!.rowsPerSecond);
    row("initial sync, engine p4 vs native sub", p4, "native sub", nativeSync, p4.rowsPerSecond / nativeSync!.rowsPerSecond);
    row("initial sync, engine p1 vs COPY pipe", p1, "COPY pipe", pipe, p1.rowsPerSecond / pipe!.rowsPerSecond);
  }

  // 2. CDC apply
  let nativeCdc: CdcResult | undefined;
  let nativeSingle: CdcResult | undefined;
  if (ONLY.has("cdc") || ONLY.has("spec")) {
    r.rows_cdc = CDC_ROWS;
    nativeCdc = await cdcNative(CDC_ROWS, CDC_TX_ROWS);
    put("cdc_native_subscription", nativeCdc);
    log(`CDC ${CDC_TX_ROWS}-row txs, native subscription: ${nativeCdc.seconds.toFixed(2)} s, ${fmtRate(nativeCdc.rowsPerSecond)} rows/s (source committed in ${nativeCdc.generationSeconds.toFixed(2)} s)`);
  }
  if (ONLY.has("cdc")) {
    const en = await cdcEngine(CDC_ROWS, CDC_TX_ROWS, PLAIN_STANDARD);
    put("cdc_engine", en);
    log(`CDC ${CDC_TX_ROWS}-row txs, engine: ${en.seconds.toFixed(2)} s, ${fmtRate(en.rowsPerSecond)} rows/s (source committed in ${en.generationSeconds.toFixed(2)} s)`);
    r.cdc_vs_native_subscription = round(en.rowsPerSecond / nativeCdc!.rowsPerSecond);
    row(`CDC ${CDC_TX_ROWS / 1000}k-row txs vs native sub`, en, "native sub", nativeCdc, en.rowsPerSecond / nativeCdc!.rowsPerSecond);
  }
  if (ONLY.has("single") || ONLY.has("spec")) {
    r.rows_cdc_single_row = SINGLE_ROWS;
    nativeSingle = await cdcNative(SINGLE_ROWS, 1);
    put("cdc_single_row_native_subscription", nativeSingle);
    log(`CDC single-row txs, native subscription: ${nativeSingle.seconds.toFixed(2)} s, ${fmtRate(nativeSingle.rowsPerSecond)} rows/s (source committed in ${nativeSingle.generationSeconds.toFixed(2)} s)`);
  }
  if (ONLY.has("single")) {
    const en = await cdcEngine(SINGLE_ROWS, 1, PLAIN_STANDARD);
    put("cdc_single_row_engine", en);
    log(`CDC single-row txs, engine: ${en.seconds.toFixed(2)} s, ${fmtRate(en.rowsPerSecond)} rows/s (source committed in ${en.generationSeconds.toFixed(2)} s)`);
    r.cdc_single_row_vs_native_subscription = round(en.rowsPerSecond / nativeSingle!.rowsPerSecond);
    row("CDC single-row txs vs native sub", en, "native sub", nativeSingle, en.rowsPerSecond / nativeSingle!.rowsPerSecond);
  }

  // 3. lag
  if (ONLY.has("lag")) {
    r.lag_duration_s = LAG_SECONDS;
    r.lag_rate_rows_per_s = (LAG_ROWS_PER_TICK * 1000) / LAG_TICK_MS;
    const lag = await lagEngine();
    r.lag_p50_ms = round(lag.p50, 1);
    r.lag_p99_ms = round(lag.p99, 1);
    r.lag_max_ms = round(lag.max, 1);
    r.lag_samples = lag.samples;
    r.lag_figure_p50_ms = round(lag.figureP50!, 1);
    r.lag_figure_p99_ms = round(lag.figureP99!, 1);
    r.lag_figure_max_ms = round(lag.figureMax!, 1);
    r.lag_figure_mean_first_quarter_ms = round(lag.figureFirstQuarter!, 1);
    r.lag_figure_mean_last_quarter_ms = round(lag.figureLastQuarter!, 1);
    r.lag_figure_after_caught_up_ms = round(lag.figureAfterCaughtUp!, 1);
    r.lag_rows_written = lag.rowsWritten;
    put("lag_engine", { seconds: LAG_SECONDS, rowsPerSecond: lag.rowsWritten / LAG_SECONDS, extra: lag.cpu });
    log(`lag at ${r.lag_rate_rows_per_s} rows/s, engine (Premium): end-to-end p50 ${lag.p50.toFixed(1)} ms, p99 ${lag.p99.toFixed(1)} ms, max ${lag.max.toFixed(1)} ms (${lag.samples} samples); figures p50 ${lag.figureP50!.toFixed(1)} ms, p99 ${lag.figureP99!.toFixed(1)} ms (mean ${lag.figureFirstQuarter!.toFixed(0)} ms in the first quarter, ${lag.figureLastQuarter!.toFixed(0)} ms in the last, ${lag.figureAfterCaughtUp!.toFixed(0)} ms once caught up)`);
    const native = await lagNative();
    r.lag_native_p50_ms = round(native.p50, 1);
    r.lag_native_p99_ms = round(native.p99, 1);
    r.lag_native_max_ms = round(native.max, 1);
    put("lag_native", { seconds: LAG_SECONDS, rowsPerSecond: native.rowsWritten / LAG_SECONDS, extra: native.cpu });
    log(`lag at ${r.lag_rate_rows_per_s} rows/s, native subscription: end-to-end p50 ${native.p50.toFixed(1)} ms, p99 ${native.p99.toFixed(1)} ms, max ${native.max.toFixed(1)} ms (${native.samples} samples)`);
    rows.push(["lag p50 / p99 ms, engine (Premium)", "", `${lag.p50.toFixed(1)} / ${lag.p99.toFixed(1)}`, "native sub", "", `${native.p50.toFixed(1)} / ${native.p99.toFixed(1)}`, ""]);
    rows.push(["lag p50 / p99 ms, engine figures", "", `${lag.figureP50!.toFixed(1)} / ${lag.figureP99!.toFixed(1)}`, "", "", "", ""]);
  }

  // 4. the spec's §2.1.1 config
  if (ONLY.has("spec")) {
    const sync = syncMedian!(syncRuns!.spec);
    put("initial_sync_engine_p4_spec_config", sync);
    r.initial_sync_vs_copy_pipe_spec_config = round(sync.rowsPerSecond / pipe!.rowsPerSecond);
    r.initial_sync_vs_native_subscription_spec_config = round(sync.rowsPerSecond / nativeSync!.rowsPerSecond);
    log(`initial sync, engine with the §2.1.1 config (parallelism 4), median of ${SYNC_REPS}: ${sync.seconds.toFixed(2)} s, ${fmtRate(sync.rowsPerSecond)} rows/s`);
    row("§2.1.1 initial sync vs COPY pipe", sync, "COPY pipe", pipe, sync.rowsPerSecond / pipe!.rowsPerSecond);
    row("§2.1.1 initial sync vs native sub", sync, "native sub", nativeSync, sync.rowsPerSecond / nativeSync!.rowsPerSecond);
    // Native again just before, as its baseline: the native run of section 2 is minutes (in a full run, two
    // single-row runs) away, and the host's speed moves in that time. The ratio against it is kept too.
    const beside = await cdcNative(CDC_ROWS, CDC_TX_ROWS);
    put("cdc_native_subscription_beside_spec_config", beside);
    log(`CDC ${CDC_TX_ROWS}-row txs, native subscription (again, beside the §2.1.1 run): ${beside.seconds.toFixed(2)} s, ${fmtRate(beside.rowsPerSecond)} rows/s`);
    const cdc = await cdcEngine(CDC_ROWS, CDC_TX_ROWS, SPEC_2_1_1);
    put("cdc_engine_spec_config", cdc);
    r.cdc_vs_native_subscription_spec_config = round(cdc.rowsPerSecond / beside.rowsPerSecond);
    r.cdc_vs_first_native_subscription_spec_config = round(cdc.rowsPerSecond / nativeCdc!.rowsPerSecond);
    log(`CDC ${CDC_TX_ROWS}-row txs, engine with the §2.1.1 config: ${cdc.seconds.toFixed(2)} s, ${fmtRate(cdc.rowsPerSecond)} rows/s`);
    row(`§2.1.1 CDC ${CDC_TX_ROWS / 1000}k-row txs vs native sub`, cdc, "native sub", beside, cdc.rowsPerSecond / beside.rowsPerSecond);
    const single = await cdcEngine(SINGLE_ROWS, 1, SPEC_2_1_1);
    put("cdc_single_row_engine_spec_config", single);
    r.cdc_single_row_vs_native_subscription_spec_config = round(single.rowsPerSecond / nativeSingle!.rowsPerSecond);
    log(`CDC single-row txs, engine with the §2.1.1 config: ${single.seconds.toFixed(2)} s, ${fmtRate(single.rowsPerSecond)} rows/s`);
    row("§2.1.1 CDC single-row txs vs native sub", single, "native sub", nativeSingle, single.rowsPerSecond / nativeSingle!.rowsPerSecond);
  }

  // 5. many tenants on one node
  const tenantRows: string[][] = [];
  if (ONLY.has("tenants")) {
    if (!onlyTenants) {
      log("tenants: starting the clusters again with room for 100 replications");
      await Promise.all([source.stop(), target.stop()]);
      [source, target] = await Promise.all([startCluster([...flags, ...TENANT_CLUSTER_FLAGS]), startCluster([...flags, ...TENANT_CLUSTER_FLAGS])]);
      await Promise.all([findPostmaster(source), findPostmaster(target)]);
    }
    const tier = TENANT_TIER === "standard" ? PLAIN_STANDARD : PLAIN_PREMIUM;
    const kit: TenantKit = {
      clusters: () => ({ source, target }),
      log,
      cpuMeter,
      engine: (sourceDb, targetDb) => engine(sourceDb, targetDb, tier),
      schema: { columns: COLUMNS, sourceTable: SOURCE_TABLE, targetTable: TARGET_TABLE, rowsSelect },
      tier: TENANT_TIER === "standard" ? "QoS Standard" : "QoS Premium",
      restSeconds: TENANT_REST_SECONDS,
      loadSeconds: TENANT_SECONDS,
    };
    r.tenants_tier = kit.tier;
    r.tenants_load_s = TENANT_SECONDS;
    r.tenants_rest_s = TENANT_REST_SECONDS;
    const sources = await seedTenantTemplate(kit, Math.max(...TENANTS));
    log(`tenants: ${sources.length} source databases of 10,000 rows each`);
    for (const [run, n] of TENANTS.entries()) {
      const result = await tenantsCase(kit, sources, n, run);
      Object.assign(r, result.keys);
      tenantRows.push(...result.rows);
      for (const [prefix, seconds, extra] of result.cpuRows) put(prefix.replace(/[ ,]+/g, "_"), { seconds, rowsPerSecond: NaN, extra });
      log(`tenants ${n}: ${result.keys[`tenants_${n}_connections`]}; RSS ${result.keys[`tenants_${n}_rss_mib`]} MiB; node ${result.keys[`tenants_${n}_node_cpu_cores`]} cores; lag p50 ${result.keys[`tenants_${n}_lag_p50_ms`]} ms, p99 ${result.keys[`tenants_${n}_lag_p99_ms`]} ms; CPU native/ours ${result.keys[`tenants_${n}_vs_native_cpu`]}`);
    }
  }

  r.total_runtime_s = round((Date.now() - started) / 1000, 1);
  // CPU that processes other than the two clusters and this one used during the measured windows, in cores on average.
  r.other_procs_cores_avg = round(otherCpu / Math.max(measuredWall, 1e-9), 2);
  if (r.other_procs_cores_avg !== null && r.other_procs_cores_avg > 0.2) {
    log(`note: other processes kept ${r.other_procs_cores_avg} of ${cpus} cores busy on average during the measured windows; the numbers are skewed by it (see "other procs")`);
  }
  // Other work on the machine shows here (the clusters and the engine alone keep it near 2 on 2 CPUs).
  r.loadavg_1m_end = round(os.loadavg()[0]!, 2);
  r.loadavg_15m_end = round(os.loadavg()[2]!, 2);

  // The table, then the JSON line.
  const header = ["case", "engine s", "engine rows/s", "baseline", "base s", "base rows/s", "ratio"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  if (rows.length > 0) process.stdout.write(`\n${line(header)}\n|${widths.map((w) => "-".repeat(w + 2)).join("|")}|\n${rows.map(line).join("\n")}\n\n`);
  // Many tenants: CPU in cores of all parties (source, target, node), the node's share and RSS, sessions, and lag end to end.
  if (tenantRows.length > 0) {
    const tw = TENANT_TABLE_HEADER.map((h, i) => Math.max(h.length, ...tenantRows.map((r) => r[i]!.length)));
    const tline = (cells: string[]) => `| ${cells.map((c, i) => (i === 1 ? c.padEnd(tw[i]!) : c.padStart(tw[i]!))).join(" | ")} |`;
    process.stdout.write(`\n${tline(TENANT_TABLE_HEADER)}\n|${tw.map((w) => "-".repeat(w + 2)).join("|")}|\n${tenantRows.map(tline).join("\n")}\n\n`);
  }
  // CPU seconds of each measured window (a median run for the initial syncs): who used the 2 cores.
  const cpuHeader = ["run (CPU seconds in the measured window)", "wall s", "source PG", "target PG", "node", "total", "cores busy", "other procs"];
  const cw = cpuHeader.map((h, i) => Math.max(h.length, ...cpuRows.map((r) => r[i]!.length)));
  const cline = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(cw[i]!) : c.padStart(cw[i]!))).join(" | ")} |`;
  if (cpuRows.length > 0) process.stdout.write(`${cline(cpuHeader)}\n|${cw.map((w) => "-".repeat(w + 2)).join("|")}|\n${cpuRows.map(cline).join("\n")}\n\n`);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

// Ctrl-C or a kill: stop the clusters before leaving.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`${signal}: stopping the clusters\n`);
    void Promise.all([source?.stop().catch(() => undefined), target?.stop().catch(() => undefined)]).finally(() => process.exit(130));
  });
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  exitCode = 1;
  process.stderr.write(`benchmark failed: ${(e as Error).stack ?? e}\n`);
} finally {
  await Promise.all([source?.stop().catch(() => undefined), target?.stop().catch(() => undefined)]);
}
process.exit(exitCode);
