// The streams benchmark: N concurrent subscribers (1,000 and 10,000) to a
// replication's metric stream — over WebSocket (/v1/ws, channel "metrics")
// and over gRPC (StreamReplicationMetrics) — from a second process
// (subscribers.ts), beside a bare `ws` server in the same run that sends
// each of N clients a frame of the same size at the same rate. Then the
// event path: events appended to the log while subscribers listen, timed
// from the append to their arrival. Prints progress, a table, and as its
// last line one JSON object of results.
//
//   npm run bench:streams              full: 1,000 and 10,000 subscribers, 5 s warm-up + 20 s measured each
//   npm run bench:streams -- --quick   200 subscribers, 2 s + 5 s: checks it works
//
// Figures:
// - deliveries per CPU-second: messages the subscribers received in the
//   window over the CPU seconds the serving process used in it (this
//   process: our server, or the bare ws server — each phase alone);
//   ws_vs_bare_ws is ours over bare's, at the largest N;
// - delivery skew: how far a subscriber's samples stray from the interval it
//   asked for — every gap between two consecutive samples of one subscriber
//   minus the interval, in absolute value — p99 over all subscribers' gaps in
//   the window (a server falling behind stretches the gaps);
// - sample age: a sample's arrival minus the time it carries (when its
//   owner read the figures from the engine, at its last pass), p99;
// - event end to end: an event's arrival at a subscriber minus the moment
//   before its append statement was sent, p99;
// - server_rss_mib: the largest resident size of this process (the server
//   and the harness; PostgreSQL runs in processes of its own) in the window.
import { fork } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { seedTenant, startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { WebSocketServer } from "ws";
import { startApp, type RunningApp } from "../../packages/server/src/app";
import { createPool } from "../../packages/server/src/store/db";
import { EventStore } from "../../packages/server/src/store/events";
import { issueToken, loadSigningKey } from "../../packages/server/src/transport/auth";
import type { SubscribeRequest, SubscribeResult } from "./subscribers";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
const QUICK = args.has("quick");
/** CPU-profiles this process over the WebSocket phases' windows (bench/streams/profiles/): the figures of such a run are not the benchmark's. */
const PROFILE = args.has("profile");
const COUNTS = (args.get("subscribers") ?? (QUICK ? "200" : "1000,10000")).split(",").map(Number);
const WARMUP_MS = Number(args.get("warmup") ?? (QUICK ? 2 : 5)) * 1000;
const DURATION_MS = Number(args.get("duration") ?? (QUICK ? 5 : 20)) * 1000;
const INTERVAL_S = 1;
/** Event subscribers, and events appended per second while they listen. */
const EVENT_SUBSCRIBERS = QUICK ? 50 : 500;
const EVENTS_PER_SECOND = 20;
const TARGETS = { subscribers: 10_000, rssMib: 1024, skewP99Ms: 100, wsVsBare: 0.5, eventP99Ms: 50 };

const ROOT = process.env.BENCH_ROOT ?? fileURLToPath(new URL("../..", import.meta.url));
const SUBSCRIBERS = join(dirname(fileURLToPath(import.meta.url)), "subscribers.mjs");
const started = Date.now();
const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const cleanups: (() => Promise<unknown> | unknown)[] = [];

interface Phase {
  name: string;
  n: number;
  result: SubscribeResult;
  serverCpuSeconds: number;
  /** Of which in the kernel (socket writes, timers). */
  serverSystemSeconds: number;
  serverRssMib: number;
}

const p = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
const perCpu = (ph: Phase) => ph.result.deliveries / Math.max(ph.serverCpuSeconds, 1e-9);

// One phase: subscribers forked, subscribed, warmed up; this process's CPU and RSS measured over their window.
async function phase(name: string, request: Omit<SubscribeRequest, "warmupMs" | "durationMs" | "root">, during?: () => () => void): Promise<Phase> {
  const child = fork(SUBSCRIBERS, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  cleanups.push(() => child.kill("SIGKILL"));
  let cpu = process.cpuUsage();
  let rss = 0;
  let watch: NodeJS.Timeout | undefined;
  let stop: (() => void) | undefined;
  let profiling: Promise<Session> | undefined;
  let threadsBefore: Map<string, number> | undefined;
  const result = await new Promise<SubscribeResult>((resolve, reject) => {
    child.on("message", (m: { ready?: number; measuring?: boolean; result?: SubscribeResult }) => {
      if (m.ready !== undefined) log(`  ${name}: ${m.ready} of ${request.n} subscribed; warming up`);
      if (m.measuring) {
        if (PROFILE && name.startsWith("WebSocket")) {
          profiling = startProfile();
          threadsBefore = threadCpu();
        }
        cpu = process.cpuUsage();
        watch = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 250);
        stop = during?.();
      }
      if (m.result) resolve(m.result);
    });
    child.on("exit", (code) => reject(new Error(`the subscriber process exited (${code})`)));
    child.send({ ...request, warmupMs: WARMUP_MS, durationMs: DURATION_MS, root: ROOT } satisfies SubscribeRequest);
  });
  const used = process.cpuUsage(cpu);
  if (profiling) {
    await stopProfile(await profiling, name);
    const after = threadCpu();
    log(`  threads' CPU s in the window: ${[...after].map(([t, c]) => [t, c - (threadsBefore?.get(t) ?? 0)] as const).filter(([, c]) => c > 0.005).sort((a, b) => b[1] - a[1]).map(([t, c]) => `${t} ${c.toFixed(2)}`).join(", ")}`);
  }
  clearInterval(watch);
  stop?.();
  const ph = { name, n: request.n, result, serverCpuSeconds: (used.user + used.system) / 1e6, serverSystemSeconds: used.system / 1e6, serverRssMib: rss / 2 ** 20 };
  log(
    `  ${name}: ${result.connected} subscribed, ${result.deliveries.toLocaleString("en-US")} messages in ${DURATION_MS / 1000} s, ` +
      `${Math.round(perCpu(ph)).toLocaleString("en-US")} per server CPU-second (${ph.serverCpuSeconds.toFixed(2)} s, ${ph.serverSystemSeconds.toFixed(2)} s of it in the kernel), skew p99 ${p(result.skewMs, 0.99)} ms, lateness p50 ${p(result.latenessMs, 0.5)} ms p99 ${p(result.latenessMs, 0.99)} ms, ` +
      `server RSS ${Math.round(ph.serverRssMib)} MiB${result.errors.length ? `, errors: ${result.errors.join("; ")}` : ""}`,
  );
  return ph;
}

// CPU seconds of each of this process's threads, by name (for --profile: where the CPU the profile of the main thread does not show went).
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  const tick = 100; // USER_HZ
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cpu = (Number(fields[11]) + Number(fields[12])) / tick;
      out.set(name, (out.get(name) ?? 0) + cpu);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

async function startProfile(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return session;
}

// Writes the profile and prints the functions with the most self time.
async function stopProfile(session: Session, name: string): Promise<void> {
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  const dir = join(ROOT, "bench/streams/profiles");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name.replace(/\W+/g, "-")}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const self = new Map<string, number>();
  const dt = (profile.endTime - profile.startTime) / Math.max(1, profile.samples?.length ?? 1);
  const counts = new Map<number, number>();
  for (const id of profile.samples ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const node of profile.nodes) {
    const f = node.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (counts.get(node.id) ?? 0) * dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  log(`  profile of ${name}: ${file}`);
  for (const [key, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) log(`    ${((us / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
}

// The baseline: a bare ws server sending each client a frame of `size` bytes every interval, stamped like ours.
function startBareWs(size: number): Promise<{ url: string; close: () => Promise<void> }> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  server.on("connection", (ws) => {
    let timer: NodeJS.Timeout | undefined;
    ws.on("message", () => {
      ws.send(JSON.stringify({ action: "subscribed", channel: "metrics", subscription_id: "s1" }));
      const frame = () => {
        const head = JSON.stringify({ channel: "metrics", subscription_id: "s1", timestamp: new Date().toISOString(), data: {} });
        ws.send(head.slice(0, -1) + `,"pad":"${"x".repeat(Math.max(0, size - head.length - 9))}"}`);
      };
      frame();
      timer = setInterval(frame, INTERVAL_S * 1000);
    });
    ws.on("close", () => clearInterval(timer));
  });
  return new Promise((resolve) =>
    server.on("listening", () => {
      const { port } = server.address() as { port: number };
      resolve({ url: `ws://127.0.0.1:${port}/`, close: () => new Promise<void>((done) => server.close(() => done())) });
    }),
  );
}

async function main(): Promise<void> {
  log(`streams benchmark: ${os.cpus().length} CPUs, node ${process.version}; ${COUNTS.join(" and ")} subscribers, ${WARMUP_MS / 1000} s warm-up + ${DURATION_MS / 1000} s measured per phase`);
  const clusters: Cluster[] = [];
  cleanups.push(async () => {
    for (const c of clusters) await c.stop().catch(() => undefined);
  });
  const [control, east, west] = await Promise.all([startCluster(), startCluster(), startCluster()]);
  clusters.push(control!, east!, west!);
  await control!.createDatabase("controlplane");
  await Promise.all([east!.createDatabase("production_db"), west!.createDatabase("replica_db")]);
  const source = await east!.connect("production_db");
  cleanups.push(() => source.end());
  await seedTenant(source, 100);
  const pool: pg.Pool = createPool(control!.url("controlplane"));
  cleanups.push(() => pool.end());
  const dataDir = mkdtempSync(join(os.tmpdir(), "heliosdb-bench-streams-"));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const token = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "bench" });
  const app: RunningApp = await startApp({
    db: pool,
    dataDir,
    host: "127.0.0.1",
    port: 0,
    grpcPort: 0,
    allowHosts: [`${east!.host}:${east!.port}`, `${west!.host}:${west!.port}`],
    // Rate limits on, as `serve` runs; the benchmark's principal has a bucket for its thousands of subscribes.
    rateLimits: { principals: { bench: { perMinute: 10_000_000, burst: 1_000_000 } } },
    webSocket: { maxSubscriptions: 100 },
    log: () => undefined,
  });
  cleanups.push(() => app.close());
  const rest = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${app.urls.rest}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };
  for (const [id, cluster, database] of [["550e8400-e29b-41d4-a716-446655440001", east!, "production_db"], ["550e8400-e29b-41d4-a716-446655440002", west!, "replica_db"]] as const) {
    const res = await rest("POST", "/connections", { connection_id: id, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database, sslmode: "disable", owner_tenant_id: "tenant-123" });
    if (res.status !== 201) throw new Error(`connection: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const created = await rest("POST", "/replications", {
    tenant_id: "tenant-123",
    source: { connection_id: "550e8400-e29b-41d4-a716-446655440001", database: "production_db" },
    target: { connection_id: "550e8400-e29b-41d4-a716-446655440002", database: "replica_db" },
    config: { qos_tier: "Premium", table_filter: ["users.*"] },
  });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  await rest("POST", `/replications/${id}/start`);
  await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
  log(`server: REST ${app.urls.rest}, gRPC ${app.urls.grpc}; replication ${id} streaming`);

  const wsUrl = `ws://127.0.0.1:${app.ports.http}/v1/ws?token=${token}`;
  const grpcTarget = `127.0.0.1:${app.ports.grpc}`;
  const base = { token, replicationId: id, intervalSeconds: INTERVAL_S, channel: "metrics" as const };
  const phases: Phase[] = [];
  // The size of our metric frame, for the baseline's.
  const probe = await phase("probe", { ...base, kind: "ws", target: wsUrl, n: 1 });
  if (!probe.result.deliveries) throw new Error(`the probe subscriber received nothing: ${probe.result.errors.join("; ")}`);
  const frameBytes = Math.round(probe.result.bytes / probe.result.deliveries);
  log(`our metric frame: ${frameBytes} bytes; the bare server sends frames of that size`);
  for (const n of COUNTS) {
    log(`--- ${n.toLocaleString("en-US")} subscribers`);
    phases.push(await phase(`WebSocket ×${n}`, { ...base, kind: "ws", target: wsUrl, n }));
    phases.push(await phase(`gRPC ×${n}`, { ...base, kind: "grpc", target: grpcTarget, n }));
    const bare = await startBareWs(frameBytes);
    phases.push(await phase(`bare ws ×${n}`, { ...base, kind: "ws", target: bare.url, n }));
    await bare.close();
  }

  log(`--- events: ${EVENT_SUBSCRIBERS} WebSocket subscribers, ${EVENTS_PER_SECOND} events appended per second`);
  const events = new EventStore(pool);
  const appendLoop = () => {
    const timer = setInterval(() => {
      void events.record({ replicationId: id, tenantId: "tenant-123", type: "BenchmarkEvent", severity: "Info", message: "bench:streams", details: { bench_appended_at_ms: String(Date.now()) } });
    }, 1000 / EVENTS_PER_SECOND);
    return () => clearInterval(timer);
  };
  const eventPhase = await phase(`events ×${EVENT_SUBSCRIBERS}`, { ...base, channel: "events", kind: "ws", target: wsUrl, n: EVENT_SUBSCRIBERS }, appendLoop);

  const largest = Math.max(...COUNTS);
  const at = (name: string) => phases.find((ph) => ph.name === `${name} ×${largest}`)!;
  const ours = at("WebSocket");
  const bare = at("bare ws");
  const grpcPhase = at("gRPC");
  const results = {
    cpus: os.cpus().length,
    node: process.version,
    quick: QUICK,
    interval_seconds: INTERVAL_S,
    duration_s: DURATION_MS / 1000,
    ws_subscribers: ours.result.connected,
    grpc_subscribers: grpcPhase.result.connected,
    server_rss_mib: Math.round(ours.serverRssMib),
    delivery_skew_p99_ms: p(ours.result.skewMs, 0.99),
    delivery_skew_p50_ms: p(ours.result.skewMs, 0.5),
    bare_delivery_skew_p99_ms: p(bare.result.skewMs, 0.99),
    sample_age_p99_ms: p(ours.result.latenessMs, 0.99),
    ws_deliveries_per_cpu_s: Math.round(perCpu(ours)),
    bare_ws_deliveries_per_cpu_s: Math.round(perCpu(bare)),
    ws_vs_bare_ws: Number((perCpu(ours) / perCpu(bare)).toFixed(3)),
    grpc_deliveries_per_cpu_s: Math.round(perCpu(grpcPhase)),
    grpc_delivery_skew_p99_ms: p(grpcPhase.result.skewMs, 0.99),
    grpc_server_rss_mib: Math.round(grpcPhase.serverRssMib),
    event_subscribers: eventPhase.result.connected,
    events_delivered: eventPhase.result.deliveries,
    event_end_to_end_p50_ms: p(eventPhase.result.latenessMs, 0.5),
    event_end_to_end_p99_ms: p(eventPhase.result.latenessMs, 0.99),
    errors: phases.flatMap((ph) => ph.result.errors.map((e) => `${ph.name}: ${e}`)),
    phases: phases.map((ph) => ({ name: ph.name, connected: ph.result.connected, deliveries: ph.result.deliveries, server_cpu_s: Number(ph.serverCpuSeconds.toFixed(2)), per_cpu_s: Math.round(perCpu(ph)), skew_p99_ms: p(ph.result.skewMs, 0.99), lateness_p99_ms: p(ph.result.latenessMs, 0.99), server_rss_mib: Math.round(ph.serverRssMib) })),
  };
  const met = (ok: boolean) => (ok ? "met" : "MISSED");
  console.log("");
  console.log("| phase | subscribed | messages | server CPU s | per CPU-second | skew p99 ms | lateness p99 ms | server RSS MiB |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const ph of [...phases, eventPhase]) {
    console.log(`| ${ph.name} | ${ph.result.connected} | ${ph.result.deliveries} | ${ph.serverCpuSeconds.toFixed(2)} | ${Math.round(perCpu(ph))} | ${p(ph.result.skewMs, 0.99) ?? "–"} | ${p(ph.result.latenessMs, 0.99)} | ${Math.round(ph.serverRssMib)} |`);
  }
  console.log("");
  console.log(`targets: ${TARGETS.subscribers} WebSocket subscribers under ${TARGETS.rssMib} MiB (${results.ws_subscribers}, ${results.server_rss_mib} MiB: ${met(results.ws_subscribers >= TARGETS.subscribers && results.server_rss_mib < TARGETS.rssMib)}), ` +
    `skew p99 < ${TARGETS.skewP99Ms} ms (${results.delivery_skew_p99_ms}: ${met(results.delivery_skew_p99_ms < TARGETS.skewP99Ms)}), ` +
    `ws_vs_bare_ws >= ${TARGETS.wsVsBare} (${results.ws_vs_bare_ws}: ${met(results.ws_vs_bare_ws >= TARGETS.wsVsBare)}), ` +
    `event p99 < ${TARGETS.eventP99Ms} ms (${results.event_end_to_end_p99_ms}: ${met(results.event_end_to_end_p99_ms < TARGETS.eventP99Ms)})`);
  console.log(JSON.stringify(results));
}

async function cleanup(): Promise<void> {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
}

process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
process.on("SIGTERM", () => void cleanup().then(() => process.exit(143)));
main().then(
  () => cleanup().then(() => process.exit(0)),
  (e) => {
    console.error(e);
    void cleanup().then(() => process.exit(1));
  },
);
