// Many tenants on one node (issue 13): N small replications, each from its own
// source database to its own target database, run by one server node (this
// process: the pipelines run in it), against N native subscriptions on the
// same clusters and data. For each contender: the time until all stream, a
// window at rest and one under a steady load of WRITES_PER_S single-row
// commits per tenant, and in each the CPU of every party, the node's RSS, the
// sessions each side holds, the commits each side makes, and (under load) the
// lag end to end. Then every target is checked against its source.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import pg from "pg";
import type { EngineEvent, ReplicationPipeline } from "../../packages/engine/src/index";
import type { Cluster } from "../../packages/engine/src/testing/clusters";
import { COLUMNS, SOURCE_TABLE, STEADY_WRITER, TARGET_TABLE, cpuMeter, log, rowsSelect, source, target } from "./kit";
import { percentile, round, sleep } from "./util";

/**
 * The tenants part's clusters: room for 100 replications of either kind at
 * once. The engine holds two source sessions (walsender + watch) and one
 * target session a pipeline, and during its initial sync a second slot
 * (temporary); a native subscription a walsender, a slot and an apply worker
 * and a replication origin (plus a table-sync worker, walsender, slot and
 * origin while it copies). The benchmark's own writers and pollers add a
 * session per tenant on each side. clusters.ts allows 20 wal senders and
 * slots, main.ts 8 apply workers, PostgreSQL 18 10 active origins (beyond
 * them a table sync fails and retries for ever).
 */
export const TENANT_CLUSTER_FLAGS = [
  "-c", "max_connections=600",
  "-c", "max_wal_senders=320",
  "-c", "max_replication_slots=320",
  "-c", "max_logical_replication_workers=240",
  "-c", "max_worker_processes=260",
  "-c", "max_active_replication_origins=320",
];

export interface TenantKit {
  engine(sourceDb: string, targetDb: string): { pipeline: ReplicationPipeline; events: EngineEvent[] };
  tier: string;
  restSeconds: number;
  loadSeconds: number;
}

const ROWS_PER_TENANT = 10_000;
const WRITES_PER_S = 20;
/** Pipelines (or subscriptions) started at once: a stampede of slot creations measures the source's snapshot builder, not a replication. */
const STARTS_AT_ONCE = 8;
const TEMPLATE = "tenant_template";
const BENCH_APP = "bench_tenants";

const MiB = 1024 * 1024;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

async function mapLimit<T, R>(items: T[], limit: number, f: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function session(cluster: Cluster, db: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: cluster.url(db), application_name: BENCH_APP });
  c.on("error", () => undefined);
  await c.connect();
  return c;
}

async function inDb<T>(cluster: Cluster, db: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await session(cluster, db);
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

// On each target: every poll_ms, now − written_at of the newest row this load wrote (as kit.ts's LAG_POLLER), kept in an array and stored once.
const POLLER = `
  CREATE TABLE bench_lag (lag_ms float8[] NOT NULL);
  CREATE PROCEDURE lag_poller(first bigint, poll_ms int, offset_ms int, duration_ms int) LANGUAGE plpgsql AS $$
  DECLARE
    t0 timestamptz;
    newest timestamptz;
    lags float8[] := '{}';
  BEGIN
    PERFORM pg_sleep(offset_ms / 1000.0);
    t0 := clock_timestamp();
    WHILE clock_timestamp() < t0 + duration_ms * interval '1 ms' LOOP
      SELECT written_at INTO newest FROM users WHERE id >= first ORDER BY id DESC LIMIT 1;
      IF newest IS NOT NULL THEN
        lags := lags || extract(epoch FROM clock_timestamp() - newest) * 1000;
      ELSIF clock_timestamp() > t0 + interval '50 ms' THEN
        -- Nothing arrived yet, though the writer's first row was committed by t0 + 50 ms: a lower bound of its lag.
        lags := lags || extract(epoch FROM clock_timestamp() - t0 - interval '50 ms') * 1000;
      END IF;
      PERFORM pg_sleep(poll_ms / 1000.0);
    END LOOP;
    INSERT INTO bench_lag VALUES (lags);
  END $$;`;

/** Seeds the template every tenant's source database is copied from: the table, 10k rows, the writer, and the native baseline's publication. */
export async function seedTenantTemplate(count: number): Promise<string[]> {
  await source.createDatabase(TEMPLATE);
  await inDb(source, TEMPLATE, async (c) => {
    await c.query(SOURCE_TABLE);
    await c.query(`INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("1", String(ROWS_PER_TENANT))}`);
    await c.query("VACUUM (FREEZE, ANALYZE) users");
    await c.query(STEADY_WRITER);
    await c.query("CREATE PUBLICATION tenant_native FOR TABLE users");
  });
  const names = Array.from({ length: count }, (_, i) => `tenant_src_${i + 1}`);
  await mapLimit(names, 4, (name) => inDb(source, "postgres", (c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`)));
  return names;
}

interface Tenant {
  src: string;
  dst: string;
}

interface Window {
  seconds: number;
  cpu: Record<string, number>;
  rssMaxMiB: number;
  connections: { source: Record<string, number>; target: Record<string, number> };
  commits: { source: number; target: number };
}

export interface ContenderResult {
  syncSeconds: number;
  /** From the end of the writers until every target showed their last row (inside the load's window). */
  catchUpSeconds: number;
  rest: Window;
  load: Window;
  lags: number[];
  rowsWritten: number;
  rssBeforeMiB: number;
  rssRestMiB: number;
  heapBeforeMiB: number;
  heapRestMiB: number;
  /** The engine's Error events (failures it retried). */
  errors: string[];
}

/** Sessions of the tenants' databases on a cluster, by backend type (the benchmark's own left out). */
async function sessions(cluster: Cluster): Promise<Record<string, number>> {
  return inDb(cluster, "postgres", async (c) => {
    const { rows } = await c.query<{ type: string; n: string }>(
      `SELECT backend_type AS type, count(*) AS n FROM pg_stat_activity
        WHERE datname LIKE 'tenant%' AND application_name IS DISTINCT FROM $1
          AND (backend_type IN ('client backend', 'walsender') OR backend_type LIKE 'logical replication%') GROUP BY 1 ORDER BY 1`,
      [BENCH_APP],
    );
    return Object.fromEntries(rows.map((r) => [r.type, Number(r.n)]));
  });
}

/** Transactions committed in the tenants' databases (pg_stat_database: each backend reports within about a second). */
async function commits(cluster: Cluster, dbs: string[]): Promise<number> {
  return inDb(cluster, "postgres", async (c) => Number((await c.query("SELECT coalesce(sum(xact_commit), 0) AS n FROM pg_stat_database WHERE datname = ANY($1)", [dbs])).rows[0].n));
}

/** CPU, peak RSS, sessions (at mid-window) and commits over `seconds`, while `during` runs (or sleeps). */
async function window(tenants: Tenant[], seconds: number, during?: () => Promise<void>): Promise<Window> {
  const srcDbs = tenants.map((t) => t.src);
  const dstDbs = tenants.map((t) => t.dst);
  const [c0s, c0t] = await Promise.all([commits(source, srcDbs), commits(target, dstDbs)]);
  let rssMax = process.memoryUsage().rss;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 250);
  const meter = cpuMeter();
  const t0 = performance.now();
  const connections = sleep((seconds * 1000) / 2).then(async () => ({ source: await sessions(source), target: await sessions(target) }));
  await (during ? during() : sleep(seconds * 1000));
  const wall = (performance.now() - t0) / 1000;
  const cpu = meter();
  clearInterval(sampler);
  // Each backend reports its commits within about a second of going idle.
  await sleep(1500);
  const [c1s, c1t] = await Promise.all([commits(source, srcDbs), commits(target, dstDbs)]);
  return { seconds: wall, cpu, rssMaxMiB: rssMax / MiB, connections: await connections, commits: { source: c1s - c0s, target: c1t - c0t } };
}

/** Waits until every target holds what its source does: same rows, same checksum. */
async function verify(tenants: Tenant[], check: () => void): Promise<void> {
  // (Caught up already: see caughtUp.)
  const sum = `SELECT count(*) AS n, md5(string_agg(u::text, E'\\n' ORDER BY u.id)) AS md5 FROM (SELECT ${COLUMNS.join(", ")} FROM users) u`;
  // A replica that fell behind under the load catches up here (catchUpSeconds).
  const deadline = Date.now() + 600_000;
  await mapLimit(tenants, 4, async (t) => {
    const want = await inDb(source, t.src, async (c) => (await c.query(sum)).rows[0]);
    for (;;) {
      check();
      const got = await inDb(target, t.dst, async (c) => (await c.query(sum)).rows[0]);
      if (got.n === want.n && got.md5 === want.md5) return;
      if (Date.now() > deadline) throw new Error(`${t.dst}: ${got.n} rows (md5 ${got.md5}) on the target, ${want.n} (md5 ${want.md5}) on the source`);
      await sleep(200);
    }
  });
}

interface Load {
  writers: pg.Client[];
  pollers: pg.Client[];
  lags: number[];
  rowsWritten: number;
}

/** A writer's session on each source database and a poller's on each target: opened before the measured window (a connection's authentication costs both sides CPU). */
async function loadSessions(tenants: Tenant[]): Promise<Load> {
  const writers = await mapLimit(tenants, 8, (t) => session(source, t.src));
  const pollers = await mapLimit(tenants, 8, (t) => session(target, t.dst));
  return { writers, pollers, lags: [], rowsWritten: 0 };
}

/** The steady load: each writer commits WRITES_PER_S rows a second; each poller samples its target's lag. */
async function load(k: TenantKit, { writers, pollers }: Load, first: number): Promise<void> {
  const n = writers.length;
  const tickMs = 1000 / WRITES_PER_S;
  // About 500 samples a second in all, at most one per tenant every 20 ms: sampling must not weigh on the target.
  const pollMs = Math.max(20, 2 * n);
  const duration = k.loadSeconds * 1000;
  await Promise.all([
    ...writers.map((w, i) => w.query("CALL steady_writer($1, 1, $2, $3, $4)", [first, tickMs, duration, Math.round((i * tickMs) / n)])),
    ...pollers.map((p, i) => p.query("CALL lag_poller($1, $2, $3, $4)", [first, pollMs, Math.round((i * pollMs) / n), duration])),
  ]);
}

/**
 * Waits until every target shows the last row its writer committed (the
 * rows are applied in commit order): the load's window ends there, so a
 * replica that fell behind pays for its catch-up inside it.
 */
async function caughtUp(l: Load, first: number, check: () => void): Promise<number> {
  const t0 = performance.now();
  const last = await Promise.all(l.writers.map(async (w) => Number((await w.query("SELECT count(*) AS n FROM users WHERE id >= $1", [first])).rows[0].n)));
  l.rowsWritten = last.reduce((a, b) => a + b, 0);
  const waiting = new Set(l.pollers.keys());
  const deadline = Date.now() + 600_000;
  while (waiting.size > 0) {
    check();
    if (Date.now() > deadline) throw new Error(`${waiting.size} target(s) did not catch up within 600 s`);
    for (const i of [...waiting]) if ((await l.pollers[i]!.query("SELECT 1 FROM users WHERE id = $1", [first + last[i]! - 1])).rowCount === 1) waiting.delete(i);
    if (waiting.size > 0) await sleep(50);
  }
  return (performance.now() - t0) / 1000;
}

/** The pollers' samples; ends the sessions. */
async function endLoad(l: Load): Promise<void> {
  try {
    for (const p of l.pollers) for (const r of (await p.query<{ lag: number }>("SELECT unnest(lag_ms) AS lag FROM bench_lag")).rows) l.lags.push(r.lag);
  } finally {
    await Promise.all([...l.writers, ...l.pollers].map((c) => c.end().catch(() => undefined)));
  }
}

/**
 * One row per tenant, applied everywhere before anything is measured: a
 * stream's first change of a table brings its Relation message (the engine
 * opens a source session for it, schema-evolution.ts), which the measured
 * windows should not include.
 */
async function warmUp(tenants: Tenant[], id: number, check: () => void): Promise<void> {
  await mapLimit(tenants, 8, (t) => inDb(source, t.src, (c) => c.query(`INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect(String(id), String(id))}`)));
  await mapLimit(tenants, 8, (t) =>
    inDb(target, t.dst, async (c) => {
      for (let i = 0; (await c.query("SELECT 1 FROM users WHERE id = $1", [id])).rowCount === 0; i++) {
        check();
        if (i > 6000) throw new Error(`${t.dst}: the warm-up row did not arrive within 300 s`);
        await sleep(50);
      }
    }),
  );
}

function memory(): { rss: number; heap: number } {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss / MiB, heap: m.heapUsed / MiB };
}

/** One contender over `tenants`: set up, wait until all stream, rest, load, verify, tear down. `first` is the load's first row id. */
export async function runContender(k: TenantKit, kind: "engine" | "native", sources: string[], run: number, first: number): Promise<ContenderResult> {
  const tenants: Tenant[] = sources.map((src, i) => ({ src, dst: `tenant_${kind}${run}_${i + 1}` }));
  await mapLimit(tenants, 4, async (t) => {
    await target.createDatabase(t.dst);
    await inDb(target, t.dst, async (c) => {
      await c.query(POLLER);
      if (kind === "native") await c.query(TARGET_TABLE);
    });
  });
  const before = memory();
  const engines: { pipeline: ReplicationPipeline; events: EngineEvent[] }[] = [];
  // A failure the engine retries is counted and reported (errors); one it gives up on ends the run.
  const check = () => {
    for (const e of engines) {
      if (e.pipeline.status === "Error" && !e.pipeline.read().retry) throw new Error(`engine failed for good: ${e.events.filter((x) => x.severity !== "Info").at(-1)?.message}`);
    }
  };
  const subscription = (i: number) => `tenant_sub${run}_${i + 1}`;
  try {
    const t0 = performance.now();
    if (kind === "engine") {
      await mapLimit(tenants, STARTS_AT_ONCE, async (t) => {
        const e = k.engine(t.src, t.dst);
        engines.push(e);
        await e.pipeline.start({ initialSyncParallelism: 1 });
        await e.pipeline.whenStreaming();
      });
      for (;;) {
        check();
        if (engines.every((e) => e.pipeline.read().initialSync.every((s) => s.completed))) break;
        await sleep(20);
      }
    } else {
      await mapLimit(tenants, STARTS_AT_ONCE, (t, i) =>
        inDb(target, t.dst, (c) => c.query(`CREATE SUBSCRIPTION ${subscription(i)} CONNECTION '${source.url(t.src)}' PUBLICATION tenant_native WITH (copy_data = true)`)),
      );
      await inDb(target, "postgres", async (c) => {
        for (;;) {
          const { rows } = await c.query(
            "SELECT count(*) FILTER (WHERE relid IS NULL AND pid IS NOT NULL) AS apply, count(*) FILTER (WHERE relid IS NOT NULL) AS sync FROM pg_stat_subscription WHERE subname LIKE $1",
            [`tenant_sub${run}_%`],
          );
          if (Number(rows[0].apply) === tenants.length && Number(rows[0].sync) === 0) break;
          await sleep(20);
        }
      });
      await mapLimit(tenants, 4, (t) =>
        inDb(target, t.dst, async (c) => {
          // 's' (sync done): the table is copied, the apply worker streams; it turns 'r' at the next change past the copy.
          while ((await c.query("SELECT 1 FROM pg_subscription_rel WHERE srsubstate NOT IN ('s', 'r')")).rowCount) await sleep(20);
        }),
      );
    }
    const syncSeconds = (performance.now() - t0) / 1000;
    await warmUp(tenants, first - 1, check);
    log(`  ${kind}: ${tenants.length} streaming after ${syncSeconds.toFixed(1)} s; ${k.restSeconds} s at rest…`);
    await sleep(2000);
    const atRest = memory();
    const rest = await window(tenants, k.restSeconds);
    check();
    log(`  ${kind}: ${k.loadSeconds} s of ${WRITES_PER_S} single-row commits/s per tenant…`);
    const loaded = await loadSessions(tenants);
    let catchUpSeconds = NaN;
    const under = await window(tenants, k.loadSeconds, async () => {
      await load(k, loaded, first);
      catchUpSeconds = await caughtUp(loaded, first, check);
    });
    await endLoad(loaded);
    log(`  ${kind}: caught up ${catchUpSeconds.toFixed(2)} s after the writers' end; checking every target…`);
    await verify(tenants, check);
    log(`  ${kind}: every target matches its source (row count and md5 of its rows)`);
    return {
      syncSeconds,
      catchUpSeconds,
      rest,
      load: under,
      lags: loaded.lags,
      rowsWritten: loaded.rowsWritten,
      rssBeforeMiB: before.rss,
      rssRestMiB: atRest.rss,
      heapBeforeMiB: before.heap,
      heapRestMiB: atRest.heap,
      errors: engines.flatMap((e) => e.events.filter((x) => x.severity === "Error" || x.severity === "Critical").map((x) => x.message)),
    };
  } finally {
    await mapLimit(engines, 8, (e) => e.pipeline.stop().catch(() => undefined));
    if (kind === "native") {
      await mapLimit(tenants, 8, (t, i) => inDb(target, t.dst, (c) => c.query(`DROP SUBSCRIPTION IF EXISTS ${subscription(i)}`)).catch(() => undefined));
    }
    await mapLimit(tenants, 4, (t) => inDb(target, "postgres", (c) => c.query(`DROP DATABASE IF EXISTS ${t.dst} WITH (FORCE)`)).catch(() => undefined));
    const left = await inDb(source, "postgres", async (c) => Number((await c.query("SELECT count(*) AS n FROM pg_replication_slots")).rows[0].n));
    if (left > 0) log(`  warning: ${left} replication slot(s) left on the source after the ${kind} run`);
  }
}

const total = (w: Window) => w.cpu.cpu_source_s! + w.cpu.cpu_target_s! + w.cpu.cpu_node_s!;
const sessionCount = (s: Record<string, number>) => Object.values(s).reduce((a, b) => a + b, 0);
const sessionText = (s: Record<string, number>) => Object.entries(s).map(([type, n]) => `${n} ${type}`).join(" + ") || "0";

/** Runs N tenants of each contender; the keys for the JSON line, table rows, and CPU rows as main.ts prints them. */
export async function tenantsCase(k: TenantKit, sources: string[], n: number, run: number): Promise<{ keys: Record<string, number | string | null>; rows: string[][]; cpuRows: [string, number, Record<string, number>][] }> {
  const mine = sources.slice(0, n);
  log(`tenants: ${n} replication(s) of ${ROWS_PER_TENANT.toLocaleString("en-US")} rows each, ${WRITES_PER_S} writes/s each (engine, ${k.tier})`);
  const ours = await runContender(k, "engine", mine, run, 1_000_000 * (2 * run + 1));
  if (ours.errors.length > 0) log(`  engine: ${ours.errors.length} failure(s), retried: ${[...new Set(ours.errors)].slice(0, 3).join(" | ")}`);
  log(`tenants: ${n} native subscription(s)`);
  const native = await runContender(k, "native", mine, run, 1_000_000 * (2 * run + 2));
  const p = `tenants_${n}`;
  const sSrc = sessionCount(ours.load.connections.source);
  const sDst = sessionCount(ours.load.connections.target);
  const perMin = (c: number, w: Window) => round((c / n / w.seconds) * 60, 1);
  const keys: Record<string, number | string | null> = {
    [`${p}_rss_mib`]: round(ours.load.rssMaxMiB, 1),
    [`${p}_rss_before_mib`]: round(ours.rssBeforeMiB, 1),
    [`${p}_rss_increase_mib`]: round(ours.load.rssMaxMiB - ours.rssBeforeMiB, 1),
    [`${p}_rest_rss_per_pipeline_mib`]: round((ours.rssRestMiB - ours.rssBeforeMiB) / n, 2),
    [`${p}_rest_heap_per_pipeline_mib`]: round((ours.heapRestMiB - ours.heapBeforeMiB) / n, 2),
    [`${p}_node_cpu_cores`]: round(ours.load.cpu.cpu_node_s! / ours.load.seconds, 3),
    [`${p}_rest_node_cpu_cores`]: round(ours.rest.cpu.cpu_node_s! / ours.rest.seconds, 3),
    [`${p}_cpu_cores`]: round(total(ours.load) / ours.load.seconds, 3),
    [`${p}_native_cpu_cores`]: round(total(native.load) / native.load.seconds, 3),
    [`${p}_rest_cpu_cores`]: round(total(ours.rest) / ours.rest.seconds, 3),
    [`${p}_native_rest_cpu_cores`]: round(total(native.rest) / native.rest.seconds, 3),
    // CPU-seconds per committed write, native over ours: the plain ratio of CPU when both writers keep their schedule, and still fair when the machine is saturated and they do not.
    [`${p}_vs_native_cpu`]: round(total(native.load) / native.rowsWritten / (total(ours.load) / ours.rowsWritten)),
    [`${p}_vs_native_cpu_plain`]: round(total(native.load) / total(ours.load)),
    [`${p}_cpu_ms_per_write`]: round((total(ours.load) / ours.rowsWritten) * 1000, 2),
    [`${p}_native_cpu_ms_per_write`]: round((total(native.load) / native.rowsWritten) * 1000, 2),
    [`${p}_node_cpu_ms_per_write`]: round((ours.load.cpu.cpu_node_s! / ours.rowsWritten) * 1000, 2),
    [`${p}_writes_per_s`]: round(ours.rowsWritten / k.loadSeconds, 1),
    [`${p}_native_writes_per_s`]: round(native.rowsWritten / k.loadSeconds, 1),
    [`${p}_engine_errors`]: ours.errors.length,
    [`${p}_lag_p50_ms`]: round(percentile(ours.lags, 50), 1),
    [`${p}_lag_p99_ms`]: round(percentile(ours.lags, 99), 1),
    [`${p}_lag_max_ms`]: round(Math.max(...ours.lags), 1),
    [`${p}_lag_samples`]: ours.lags.length,
    [`${p}_native_lag_p50_ms`]: round(percentile(native.lags, 50), 1),
    [`${p}_native_lag_p99_ms`]: round(percentile(native.lags, 99), 1),
    [`${p}_connections_source`]: sSrc,
    [`${p}_connections_target`]: sDst,
    [`${p}_connections`]: `source ${sSrc} (${sessionText(ours.load.connections.source)}), target ${sDst} (${sessionText(ours.load.connections.target)})`,
    [`${p}_native_connections`]: `source ${sessionCount(native.load.connections.source)} (${sessionText(native.load.connections.source)}), target ${sessionCount(native.load.connections.target)} (${sessionText(native.load.connections.target)})`,
    [`${p}_rest_source_commits_per_pipeline_min`]: perMin(ours.rest.commits.source, ours.rest),
    [`${p}_rest_target_commits_per_pipeline_min`]: perMin(ours.rest.commits.target, ours.rest),
    [`${p}_load_target_commits_per_pipeline_min`]: perMin(ours.load.commits.target, ours.load),
    [`${p}_native_load_target_commits_per_pipeline_min`]: perMin(native.load.commits.target, native.load),
    [`${p}_sync_s`]: round(ours.syncSeconds, 2),
    [`${p}_native_sync_s`]: round(native.syncSeconds, 2),
    [`${p}_catch_up_s`]: round(ours.catchUpSeconds, 2),
    [`${p}_native_catch_up_s`]: round(native.catchUpSeconds, 2),
    [`${p}_rows_written`]: ours.rowsWritten,
    [`${p}_native_rows_written`]: native.rowsWritten,
  };
  const row = (who: string, r: ContenderResult): string[] => [
    String(n),
    who,
    r.syncSeconds.toFixed(1),
    (total(r.rest) / r.rest.seconds).toFixed(3),
    (total(r.load) / r.load.seconds).toFixed(3),
    (r.load.cpu.cpu_node_s! / r.load.seconds).toFixed(3),
    (r.rowsWritten / k.loadSeconds).toFixed(0),
    ((total(r.load) / r.rowsWritten) * 1000).toFixed(2),
    who === "engine" ? `${r.load.rssMaxMiB.toFixed(0)} (+${(r.load.rssMaxMiB - r.rssBeforeMiB).toFixed(0)})` : "",
    `${sessionCount(r.load.connections.source)} / ${sessionCount(r.load.connections.target)}`,
    `${perMin(r.rest.commits.source, r.rest)} / ${perMin(r.rest.commits.target, r.rest)}`,
    `${percentile(r.lags, 50).toFixed(1)} / ${percentile(r.lags, 99).toFixed(1)}`,
    who === "engine" ? `${keys[`${p}_vs_native_cpu`]}×` : "",
  ];
  return {
    keys,
    rows: [row("engine", ours), row("native", native)],
    cpuRows: [
      [`tenants ${n}, engine at rest`, ours.rest.seconds, ours.rest.cpu],
      [`tenants ${n}, native at rest`, native.rest.seconds, native.rest.cpu],
      [`tenants ${n}, engine under load`, ours.load.seconds, ours.load.cpu],
      [`tenants ${n}, native under load`, native.load.seconds, native.load.cpu],
    ],
  };
}

export const TENANT_TABLE_HEADER = [
  "tenants",
  "replica",
  "sync s",
  "rest cores",
  "load cores",
  "node cores",
  "writes/s",
  "CPU ms/write",
  "node RSS MiB (+Δ)",
  "sessions src / tgt",
  "rest commits/min src / tgt",
  "lag p50 / p99 ms",
  "CPU/write native/ours",
];
