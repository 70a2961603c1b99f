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
// --tenant-tier=premium|standard --cpu-groups=off (tenants: share the
// scheduler, see ../cpu-groups.ts) --only=codecs,sync,cdc,single,lag,spec,tenants.
// Results: docs/benchmarks.md. The cases: codecs.ts, sync.ts, cdc.ts, lag.ts,
// tenants.ts; what they share (settings, schema, clusters, the engine's
// configs): kit.ts.
import os from "node:os";
import { startCluster } from "../../packages/engine/src/testing/clusters";
import { cpuGroups } from "../cpu-groups";
import { machineBusy, processIds, processTree } from "../proc-cpu";
import { findPostmaster } from "./cpu";
import { TENANT_CLUSTER_FLAGS, TENANT_TABLE_HEADER, seedTenantTemplate, tenantsCase, type TenantKit } from "./tenants";
import { round, sleep } from "./util";
import {
  QUICK,
  ROWS,
  CDC_ROWS,
  CDC_TX_ROWS,
  SINGLE_ROWS,
  LAG_SECONDS,
  LAG_ROWS_PER_TICK,
  LAG_TICK_MS,
  SYNC_REPS,
  TENANTS,
  TENANT_SECONDS,
  TENANT_REST_SECONDS,
  TENANT_TIER,
  TENANT_CPU_GROUPS,
  ONLY,
  started,
  log,
  fmtRate,
  source,
  target,
  useClusters,
  withClient,
  one,
  PLAIN_STANDARD,
  PLAIN_PREMIUM,
  SPEC_2_1_1,
  engine,
} from "./kit";
import { type Timed, seedSyncSource, syncCopyPipe, syncNative, syncEngine } from "./sync";
import { type CdcResult, cdcNative, cdcEngine } from "./cdc";
import { lagEngine, lagNative } from "./lag";
import { codecsCase } from "./codecs";

// ---------------------------------------------------------------- main

/** The run of median time, with every run's time in `runs_s`. */
function median<T extends Timed>(ts: T[]): T {
  const m = [...ts].sort((a, b) => a.seconds - b.seconds)[Math.floor(ts.length / 2)]!;
  return { ...m, extra: { ...m.extra, runs_s: ts.map((t) => t.seconds.toFixed(3)).join(",") } };
}

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
  // The codecs need no cluster: measured first, on a machine nothing else of the benchmark loads yet.
  if (ONLY.has("codecs")) Object.assign(r0, await codecsCase(log));
  if ([...ONLY].every((part) => part === "codecs")) {
    process.stdout.write(`${JSON.stringify({ ...r0, engine_commit: revision.commit, engine_uncommitted_files: revision.changed?.length ?? null })}\n`);
    return;
  }
  if (ONLY.has("tenants")) log(`tenants: ${TENANTS.join(", ")} replications of 10,000 rows, ${TENANT_REST_SECONDS} s at rest and ${TENANT_SECONDS} s at 20 writes/s each`);
  if (!onlyTenants) log(`sizes: initial sync ${ROWS.toLocaleString("en-US")} rows; CDC ${CDC_ROWS.toLocaleString("en-US")} rows in ${CDC_TX_ROWS.toLocaleString("en-US")}-row transactions and ${SINGLE_ROWS.toLocaleString("en-US")} single-row transactions; lag ${LAG_SECONDS} s at ${(LAG_ROWS_PER_TICK * 1000) / LAG_TICK_MS} rows/s`);
  const flags = ["-c", "max_wal_size=8GB", "-c", "checkpoint_timeout=30min", "-c", "max_logical_replication_workers=8", "-c", "max_worker_processes=16"];
  const firstFlags = onlyTenants ? [...flags, ...TENANT_CLUSTER_FLAGS] : flags;
  const [s, t] = await Promise.all([startCluster(firstFlags), startCluster(firstFlags)]);
  useClusters({ source: s, target: t });
  const version = await withClient(source, "postgres", (c) => one<string>(c, "SHOW server_version"));
  let [sourcePm, targetPm] = await Promise.all([findPostmaster(source), findPostmaster(target)]);
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
    pipe = median(runs.pipe);
    put("initial_sync_copy_pipe", pipe);
    nativeSync = median(runs.native);
    put("initial_sync_native_subscription", nativeSync);
    syncRuns = runs;
  }
  if (ONLY.has("sync")) {
    const p4 = median(syncRuns!.p4);
    put("initial_sync_engine_p4", p4);
    const p1 = median(syncRuns!.p1);
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
    const sync = median(syncRuns!.spec);
    put("initial_sync_engine_p4_spec_config", sync);
    r.initial_sync_vs_copy_pipe_spec_config = round(sync.rowsPerSecond / pipe!.rowsPerSecond);
    r.initial_sync_vs_native_subscription_spec_config = round(sync.rowsPerSecond / nativeSync!.rowsPerSecond);
    log(`initial sync, engine with the §2.1.1 config (parallelism 4), median of ${SYNC_REPS}: ${sync.seconds.toFixed(2)} s, ${fmtRate(sync.rowsPerSecond)} rows/s`);
    row("§2.1.1 initial sync vs COPY pipe", sync, "COPY pipe", pipe, sync.rowsPerSecond / pipe!.rowsPerSecond);
    row("§2.1.1 initial sync vs native sub", sync, "native sub", nativeSync, sync.rowsPerSecond / nativeSync!.rowsPerSecond);
    // Native again beside it, as its baseline: the native run of section 2 is minutes (in a full run, two
    // single-row runs) away, and the host's speed moves in that time (the ratio against it is kept too). In
    // rounds, the medians reported: CPU-bound on the two cores, one pair read 0.76× in one full run and 0.58× in
    // the next.
    const cdcRuns: { native: CdcResult[]; engine: CdcResult[] } = { native: [], engine: [] };
    for (let i = 1; i <= SYNC_REPS; i++) {
      cdcRuns.native.push(await cdcNative(CDC_ROWS, CDC_TX_ROWS));
      log(`CDC ${CDC_TX_ROWS}-row txs, native subscription (again, beside the §2.1.1 run; ${i} of ${SYNC_REPS}): ${cdcRuns.native.at(-1)!.seconds.toFixed(2)} s`);
      cdcRuns.engine.push(await cdcEngine(CDC_ROWS, CDC_TX_ROWS, SPEC_2_1_1));
      log(`CDC ${CDC_TX_ROWS}-row txs, engine with the §2.1.1 config (${i} of ${SYNC_REPS}): ${cdcRuns.engine.at(-1)!.seconds.toFixed(2)} s`);
    }
    const beside = median(cdcRuns.native);
    put("cdc_native_subscription_beside_spec_config", beside);
    log(`CDC ${CDC_TX_ROWS}-row txs, native subscription beside the §2.1.1 runs, median of ${SYNC_REPS}: ${beside.seconds.toFixed(2)} s, ${fmtRate(beside.rowsPerSecond)} rows/s`);
    const cdc = median(cdcRuns.engine);
    put("cdc_engine_spec_config", cdc);
    r.cdc_vs_native_subscription_spec_config = round(cdc.rowsPerSecond / beside.rowsPerSecond);
    r.cdc_vs_first_native_subscription_spec_config = round(cdc.rowsPerSecond / nativeCdc!.rowsPerSecond);
    log(`CDC ${CDC_TX_ROWS}-row txs, engine with the §2.1.1 config, median of ${SYNC_REPS}: ${cdc.seconds.toFixed(2)} s, ${fmtRate(cdc.rowsPerSecond)} rows/s`);
    row(`§2.1.1 CDC ${CDC_TX_ROWS / 1000}k-row txs vs native sub`, cdc, "native sub", beside, cdc.rowsPerSecond / beside.rowsPerSecond);
    // The same for single-row transactions (at 6a45478 a full run gave 0.81× against the first native run, six
    // minutes away, while alternating runs of the two engine versions gave the same times).
    const singleBeside = await cdcNative(SINGLE_ROWS, 1);
    put("cdc_single_row_native_subscription_beside_spec_config", singleBeside);
    log(`CDC single-row txs, native subscription (again, beside the §2.1.1 run): ${singleBeside.seconds.toFixed(2)} s, ${fmtRate(singleBeside.rowsPerSecond)} rows/s`);
    const single = await cdcEngine(SINGLE_ROWS, 1, SPEC_2_1_1);
    put("cdc_single_row_engine_spec_config", single);
    r.cdc_single_row_vs_native_subscription_spec_config = round(single.rowsPerSecond / singleBeside.rowsPerSecond);
    if (nativeSingle) r.cdc_single_row_vs_first_native_subscription_spec_config = round(single.rowsPerSecond / nativeSingle.rowsPerSecond);
    log(`CDC single-row txs, engine with the §2.1.1 config: ${single.seconds.toFixed(2)} s, ${fmtRate(single.rowsPerSecond)} rows/s`);
    row("§2.1.1 CDC single-row txs vs native sub", single, "native sub", singleBeside, single.rowsPerSecond / singleBeside.rowsPerSecond);
  }

  // 5. many tenants on one node
  const tenantRows: string[][] = [];
  if (ONLY.has("tenants")) {
    if (!onlyTenants) {
      log("tenants: starting the clusters again with room for 100 replications");
      await Promise.all([source.stop(), target.stop()]);
      const [s, t] = await Promise.all([startCluster([...flags, ...TENANT_CLUSTER_FLAGS]), startCluster([...flags, ...TENANT_CLUSTER_FLAGS])]);
      useClusters({ source: s, target: t });
      [sourcePm, targetPm] = await Promise.all([findPostmaster(source), findPostmaster(target)]);
    }
    const groups = TENANT_CPU_GROUPS ? cpuGroups(["source", "target", "node"]) : { unavailable: "--cpu-groups=off" };
    if ("unavailable" in groups) {
      log(`tenants: the source, the target and the node share the scheduler (${groups.unavailable})`);
    } else {
      const pids = processIds();
      groups.join("source", processTree(sourcePm!, pids));
      groups.join("target", processTree(targetPm!, pids));
      groups.join("node", [process.pid]);
      log("tenants: the source, the target and the node each run in a CPU group of their own (equal shares: bench/cpu-groups.ts)");
    }
    r.tenants_cpu_groups = "unavailable" in groups ? "none" : "source, target, node";
    const tier = TENANT_TIER === "standard" ? PLAIN_STANDARD : PLAIN_PREMIUM;
    const kit: TenantKit = {
      engine: (sourceDb, targetDb) => engine(sourceDb, targetDb, tier),
      tier: TENANT_TIER === "standard" ? "QoS Standard" : "QoS Premium",
      restSeconds: TENANT_REST_SECONDS,
      loadSeconds: TENANT_SECONDS,
    };
    r.tenants_tier = kit.tier;
    r.tenants_load_s = TENANT_SECONDS;
    r.tenants_rest_s = TENANT_REST_SECONDS;
    const sources = await seedTenantTemplate(Math.max(...TENANTS));
    log(`tenants: ${sources.length} source databases of 10,000 rows each`);
    for (const [run, n] of TENANTS.entries()) {
      const result = await tenantsCase(kit, sources, n, run);
      Object.assign(r, result.keys);
      tenantRows.push(...result.rows);
      for (const [prefix, seconds, extra] of result.cpuRows) put(prefix.replace(/[ ,]+/g, "_"), { seconds, rowsPerSecond: NaN, extra });
      log(`tenants ${n}: ${result.keys[`tenants_${n}_connections`]}; RSS ${result.keys[`tenants_${n}_rss_mib`]} MiB; node ${result.keys[`tenants_${n}_node_cpu_cores`]} cores; lag p50 ${result.keys[`tenants_${n}_lag_p50_ms`]} ms, p99 ${result.keys[`tenants_${n}_lag_p99_ms`]} ms; CPU native/ours ${result.keys[`tenants_${n}_vs_native_cpu`]}`);
    }
    if (!("unavailable" in groups)) groups.remove();
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
