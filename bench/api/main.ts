// The API benchmark: GET /v1/replications/{id} over REST and
// ReplicationService/GetReplication over gRPC, each with a JWT and with an
// API key, rate limits on (spec §7: every call takes a token of its
// principal's bucket in the control plane; the buckets are sized so that
// none refuses), each against a bare server on
// the same machine in the same run answering the very same bytes: a node:http
// server for REST and a @grpc/grpc-js server for gRPC. The load comes from a
// second process (load.ts, forked once per target) with N requests in flight.
// Prints progress, a table, and as its last line one JSON object of results.
//
//   npm run bench:api              full run: 2 s warm-up + 10 s measured per target
//   npm run bench:api -- --quick   1 s warm-up + 2 s measured: checks it works
//
// Options for development: --concurrency=N --duration=S --warmup=S
// --rate-limits=off (the server without rate limits: what they cost)
// --profile (CPU-profiles this process — the server and the baselines — in
// each measured window, writes bench/api/profiles/*.cpuprofile and prints
// where the time goes; the profiler slows the server down, so the figures of
// such a run are not the benchmark's).
import { execFileSync, fork } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { Session } from "node:inspector/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { GetReplicationRequestSchema, ReplicationSchema, ReplicationStatus } from "@heliosdb/replication-proto";
import { seedTenant, startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { startApp, type RunningApp } from "../../packages/server/src/app";
import { createPool } from "../../packages/server/src/store/db";
import { issueToken, loadSigningKey } from "../../packages/server/src/transport/auth";
import { clusterCpu, findPostmaster as postmasterOf, machineBusy, processIds } from "../proc-cpu";
import type { LoadRequest, LoadResult } from "./load";

// ---------------------------------------------------------------- settings

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
const QUICK = args.has("quick");
const PROFILE = args.has("profile");
const RATE_LIMITS = args.get("rate-limits") !== "off";
const num = (name: string, full: number, quick: number) => Number(args.get(name) ?? (QUICK ? quick : full));
/** Requests in flight at once, from the load process. */
const CONCURRENCY = num("concurrency", 32, 32);
/** Seconds measured per target, after WARMUP seconds of the same load. */
const DURATION = num("duration", 10, 2);
const WARMUP = num("warmup", 2, 1);
/** Users of the seeded tenant (orders and products come with them). */
const TENANT_USERS = 3000;
/** The ratio each protocol should reach against its bare baseline. */
const TARGET_RATIO = 0.6;
/**
 * How far an answer's length may stray from the recorded one: the live
 * figures of a streaming replication (LSN, transaction id, rates, ratios,
 * uptime) move with the heartbeat every second.
 */
const LENGTH_TOLERANCE = 0.1;
/** A full run waits (at most this long) until no engine benchmark shares the machine. */
const WAIT_FOR_OTHERS_MS = 15 * 60_000;
const WAIT_POLL_MS = 10_000;

const ROOT = process.env.BENCH_ROOT ?? fileURLToPath(new URL("../..", import.meta.url));
const HERE = dirname(fileURLToPath(import.meta.url));
const LOAD_SCRIPT = join(HERE, "load.mjs");
const PROFILES = join(ROOT, "bench/api/profiles");
const GET_METHOD = "/heliosdb.replication.v1.ReplicationService/GetReplication";

const started = Date.now();
const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const round = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);
const fmtRate = (x: number) => Math.round(x).toLocaleString("en-US");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- other benchmarks

/** Command lines of other processes that run the engine benchmark. */
function otherBenchmarks(): string[] {
  const out = execFileSync("ps", ["aux"], { encoding: "utf8" });
  return out.split("\n").filter((l) => l.includes("bench/engine"));
}

async function waitForOtherBenchmarks(): Promise<{ waitedS: number; stillRunning: boolean }> {
  const t0 = Date.now();
  let others = otherBenchmarks();
  while (others.length > 0 && Date.now() - t0 < WAIT_FOR_OTHERS_MS) {
    log(`another benchmark shares the machine (${others.length} process(es) with "bench/engine" in ps aux); checking again in ${WAIT_POLL_MS / 1000} s`);
    await sleep(WAIT_POLL_MS);
    others = otherBenchmarks();
  }
  if (others.length > 0) log(`WARNING: still running after ${WAIT_FOR_OTHERS_MS / 60_000} min; measuring anyway, the figures are skewed`);
  return { waitedS: (Date.now() - t0) / 1000, stillRunning: others.length > 0 };
}

// ---------------------------------------------------------------- CPU accounting

// CPU seconds in a measured window, from /proc (Linux): this process (the
// project's server and the two baselines, one at a time under load), the load
// process (it reports its own), the three PostgreSQL clusters (postmaster and
// children), and everything else the machine ran.
const postmasters = new Set<number>();

async function findPostmaster(cluster: Cluster): Promise<void> {
  const pid = await postmasterOf(cluster);
  if (pid) postmasters.add(pid);
}

interface Cpu {
  node: number;
  pg: number;
  machine: number;
}

function cpuNow(): Cpu {
  const pids = processIds();
  let pgCpu = 0;
  for (const pm of postmasters) pgCpu += clusterCpu(pm, pids) || 0;
  const { user, system } = process.cpuUsage();
  return { node: (user + system) / 1e6, pg: pgCpu, machine: machineBusy() };
}

// ---------------------------------------------------------------- profiling

/** Maps a line of this bundle to the source file esbuild put there (it heads each module with `// path`). */
function bundleSourceMap(): (line: number) => string {
  const starts: [number, string][] = [];
  try {
    readFileSync(fileURLToPath(import.meta.url), "utf8")
      .split("\n")
      .forEach((l, i) => {
        const m = /^\/\/ ((?:packages|bench)\/\S+\.ts)$/.exec(l);
        if (m) starts.push([i, m[1]!]);
      });
  } catch {
    // no map: everything of the bundle is "bundle"
  }
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "bundle";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]![0] <= line) {
        found = starts[mid]![1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function category(frame: ProfileNode["callFrame"], sourceOf: (line: number) => string): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith("(") ? functionName : "V8/native builtins";
  if (url.startsWith("node:")) {
    const name = url.replace(/^node:(internal\/)?/, "").split("/")[0]!.replace(/^_/, "");
    return `node:${name.replace(/_.*$/, "")}`;
  }
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url === import.meta.url) return sourceOf(frame.lineNumber);
  return url;
}

/**
 * What a sample was doing, by the frames on its stack: the first of these
 * that any frame matches (so the socket write under a pg query counts as the
 * query, the DOMException under an abort as the abort).
 */
const STAGES: [string, (fn: string, where: string) => boolean][] = [
  ["the profiler itself (node:inspector)", (_, w) => w === "node:inspector"],
  ["JWT check (jose: HS256 via WebCrypto, for a token not verified before)", (_, w) => w.includes("/node_modules/jose/")],
  ["PostgreSQL round trip (pg: pool, query, socket, rows; the cache's LISTEN session, the API keys' barrier, the rate-limit statement)", (_, w) => /\/node_modules\/(pg|pg-pool|pg-protocol|pg-types|postgres-[\w-]+)\//.test(w)],
  ["REST: message to JSON (proto/src/rest/write-rest.ts, to-rest.ts, names.ts)", (_, w) => /packages\/proto\/src\/rest\/(write-rest|to-rest|names)\.ts$/.test(w)],
  ["REST: request to message (proto/src/rest/from-rest.ts, query.ts)", (_, w) => /packages\/proto\/src\/rest\/(from-rest|query|field-mask)\.ts$/.test(w)],
  ["protobuf binary encode/decode (Connect serialize/parse)", (_, w) => w.includes("/@connectrpc/connect/dist/esm/protocol/serialization.js")],
  ["AbortController.abort per call (DOMException)", (fn, w) => w === "node:internal/abort_controller" || (fn === "abort" && w.includes("/@connectrpc/"))],
  ["node:http (HTTP/1.1 parse, headers, write)", (_, w) => /^node:(_http_|internal\/http$|http$)/.test(w)],
  ["node:http2", (_, w) => w.startsWith("node:internal/http2")],
  ["@grpc/grpc-js", (_, w) => w.includes("/node_modules/@grpc/")],
  ["protobufjs", (_, w) => /\/node_modules\/(protobufjs|@protobufjs)\//.test(w)],
  ["Connect other (router, handler, context, interceptors)", (_, w) => w.includes("/node_modules/@connectrpc/")],
  ["protobuf-es other (create, reflection, JSON)", (_, w) => w.includes("/node_modules/@bufbuild/")],
  ["server code (packages/server/src)", (_, w) => w.startsWith("packages/server/")],
  ["engine and pipeline (packages/engine/src, background)", (_, w) => w.startsWith("packages/engine/")],
  ["the benchmark (bench/api)", (_, w) => w.startsWith("bench/")],
];

/** Self time by category, by function and by stage, in ms. */
function summarize(profile: CpuProfile, sourceOf: (line: number) => string) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const where = (f: ProfileNode["callFrame"]) => (f.url === import.meta.url ? sourceOf(f.lineNumber) : f.url);
  // Each node's stage: the best (first) stage of any frame from the root down to it.
  const stageOf = new Map<number, number>();
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const todo: [number, number][] = profile.nodes.filter((n) => !childIds.has(n.id)).map((n) => [n.id, STAGES.length]);
  while (todo.length > 0) {
    const [id, inherited] = todo.pop()!;
    const node = byId.get(id)!;
    const own = STAGES.findIndex(([, match]) => match(node.callFrame.functionName, where(node.callFrame)));
    const stage = own >= 0 ? Math.min(own, inherited) : inherited;
    stageOf.set(id, stage);
    for (const c of node.children ?? []) todo.push([c, stage]);
  }
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  const stages = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of self) {
    const frame = byId.get(id)!.callFrame;
    const cat = category(frame, sourceOf);
    categories.set(cat, (categories.get(cat) ?? 0) + ms);
    const fn = `${frame.functionName || "(anonymous)"} [${cat}]`;
    functions.set(fn, (functions.get(fn) ?? 0) + ms);
    const special = /^\((idle|garbage collector|program)\)$/.test(frame.functionName) ? frame.functionName : undefined;
    const stage = special ?? STAGES[stageOf.get(id) ?? STAGES.length]?.[0] ?? "other (node internals, V8 builtins, microtask queue)";
    stages.set(stage, (stages.get(stage) ?? 0) + ms);
    total += ms;
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  return { total, categories: top(categories, 18), functions: top(functions, 18), stages: top(stages, 30) };
}

// ---------------------------------------------------------------- targets

interface Recorded {
  restBody: Buffer;
  restContentType: string;
  grpcMessage: Buffer;
}

/** One raw GET with node:http: status, content type and the exact body bytes. */
function rawGet(port: number, path: string, token?: string): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

/** One raw unary gRPC call with @grpc/grpc-js: the exact response message bytes. */
async function rawGrpc(port: number, method: string, request: Uint8Array, token?: string): Promise<Buffer> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const metadata = new grpc.Metadata();
    if (token) metadata.set("authorization", `Bearer ${token}`);
    const identity = (b: Buffer) => b;
    return await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest<Buffer, Buffer>(method, identity, identity, Buffer.from(request), metadata, (e, v) => (e ? reject(e) : resolve(v!))),
    );
  } finally {
    client.close();
  }
}

/** The REST baseline: a bare node:http server answering the recorded JSON to every request. */
function startBareHttp(body: Buffer, contentType: string): Promise<{ port: number; close: () => Promise<void> }> {
  const headers = { "content-type": contentType, "content-length": String(body.length) };
  const server = http.createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end(body);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as { port: number }).port,
        close: () => new Promise<void>((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      }),
    ),
  );
}

/**
 * The gRPC baseline: a bare @grpc/grpc-js server of our .proto (loaded with
 * @grpc/proto-loader) whose GetReplication answers the recorded message,
 * decoded once (grpc-js encodes it again for every response).
 */
async function startBareGrpc(message: Buffer): Promise<{ port: number; identical: boolean; reencodedBytes: number; close: () => Promise<void> }> {
  const definition = protoLoader.loadSync("heliosdb/replication/v1/replication.proto", {
    includeDirs: [join(ROOT, "proto"), join(ROOT, "node_modules/google-proto-files")],
  });
  const service = definition["heliosdb.replication.v1.ReplicationService"] as grpc.ServiceDefinition;
  const get = service.GetReplication!;
  const decoded = get.responseDeserialize(message);
  const reencoded = get.responseSerialize(decoded);
  const server = new grpc.Server();
  server.addService(service, {
    GetReplication: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, decoded),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    port,
    identical: Buffer.compare(reencoded, message) === 0,
    reencodedBytes: reencoded.length,
    close: () => new Promise<void>((done) => server.tryShutdown(() => done())),
  };
}

// ---------------------------------------------------------------- load

interface Measured extends LoadResult {
  /** CPU seconds of this process (server or baseline), of the clusters, and of every other process, in the window. */
  nodeCpuS: number;
  pgCpuS: number;
  otherCpuS: number;
  profile?: ReturnType<typeof summarize>;
}

let profiler: Session | undefined;

/** Loads one target from a forked load process; CPU (and the profile) cover the measured window only. */
async function measure(name: string, request: Omit<LoadRequest, "concurrency" | "warmupMs" | "durationMs" | "lengthTolerance">): Promise<Measured> {
  const child = fork(LOAD_SCRIPT, [], { execArgv: ["--enable-source-maps"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let cpuStart: Cpu | undefined;
  let cpuEnd: Cpu | undefined;
  let profileDone: Promise<CpuProfile> | undefined;
  const result = await new Promise<LoadResult>((resolve, reject) => {
    child.on("message", (m: { phase?: string; result?: LoadResult; error?: string }) => {
      if (m.phase === "measuring") {
        cpuStart = cpuNow();
        if (profiler) void profiler.post("Profiler.start");
      } else if (m.phase === "measured") {
        cpuEnd = cpuNow();
        if (profiler) profileDone = profiler.post("Profiler.stop").then((r) => r.profile as unknown as CpuProfile);
      } else if (m.result) resolve(m.result);
      else if (m.error) reject(new Error(`load process for ${name}: ${m.error}`));
    });
    child.on("exit", (code) => reject(new Error(`load process for ${name} exited with ${code}`)));
    child.send({ ...request, lengthTolerance: LENGTH_TOLERANCE, concurrency: CONCURRENCY, warmupMs: WARMUP * 1000, durationMs: DURATION * 1000 } satisfies LoadRequest);
  });
  const end = cpuEnd ?? cpuNow();
  const start = cpuStart ?? end;
  const nodeCpuS = end.node - start.node;
  const pgCpuS = end.pg - start.pg;
  const measured: Measured = {
    ...result,
    nodeCpuS,
    pgCpuS,
    otherCpuS: Math.max(0, end.machine - start.machine - nodeCpuS - pgCpuS - result.cpuSeconds),
  };
  if (profileDone) {
    const profile = await profileDone;
    mkdirSync(PROFILES, { recursive: true });
    const file = join(PROFILES, `${name.replace(/[^\w]+/g, "-")}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    measured.profile = summarize(profile, bundleSourceMap());
    log(`  profile written to ${file}`);
  }
  // NaN (no successful request) comes through IPC as null.
  for (const k of ["p50Ms", "p90Ms", "p99Ms", "maxMs", "meanMs"] as const) measured[k] = Number(measured[k] ?? NaN);
  const errors = measured.errors ? `, ${measured.errors} errors: ${JSON.stringify(measured.errorKinds)}` : ", no error";
  const exact = measured.requests ? `${((100 * measured.exactLength) / measured.requests).toFixed(1)}% of answers exactly the recorded length` : "";
  log(
    `  ${name}: ${fmtRate(measured.requestsPerSecond)} req/s, p50 ${measured.p50Ms.toFixed(2)} ms, p99 ${measured.p99Ms.toFixed(2)} ms${errors}, ${exact}; ` +
      `CPU s in the window: server/baseline process ${nodeCpuS.toFixed(1)}, load process ${measured.cpuSeconds.toFixed(1)}, PostgreSQL ${pgCpuS.toFixed(1)}, other ${measured.otherCpuS.toFixed(1)}`,
  );
  return measured;
}

function printProfile(name: string, m: Measured): void {
  if (!m.profile) return;
  const { total, categories, functions, stages } = m.profile;
  const pct = (ms: number) => `${((100 * ms) / total).toFixed(1).padStart(5)}%`;
  const perRequest = (ms: number) => `${((1000 * ms) / Math.max(1, m.requests + m.errors)).toFixed(0).padStart(5)} µs/req`;
  process.stdout.write(
    `\nwhere the time of the server process's main thread goes, ${name} (self time, ${(total / 1000).toFixed(1)} s sampled, ${m.requests + m.errors} requests; ` +
      `the process used ${m.nodeCpuS.toFixed(2)} CPU s in all, ${((1e6 * m.nodeCpuS) / Math.max(1, m.requests + m.errors)).toFixed(0)} µs a request):\n  by stage:\n`,
  );
  for (const [stage, ms] of stages) process.stdout.write(`  ${pct(ms)}  ${perRequest(ms)}  ${stage}\n`);
  process.stdout.write(`  by package or source file:\n`);
  for (const [cat, ms] of categories) process.stdout.write(`  ${pct(ms)}  ${cat}\n`);
  process.stdout.write(`  top functions:\n`);
  for (const [fn, ms] of functions) process.stdout.write(`  ${pct(ms)}  ${fn}\n`);
}

// ---------------------------------------------------------------- setup

const EAST = "550e8400-e29b-41d4-a716-446655440001";
const WEST = "550e8400-e29b-41d4-a716-446655440002";

// Spec §2.1.1, as written (as the server's end-to-end test creates it).
const CREATE = {
  tenant_id: "tenant-123",
  source: { connection_id: EAST, database: "production_db", schema: "public" },
  target: { connection_id: WEST, database: "replica_db", schema: "public" },
  config: {
    qos_tier: "Premium",
    max_lag_seconds: 5,
    priority: 90,
    table_filter: ["users.*", "orders.*", "products.*"],
    row_filter: { enabled: false },
    transforms: [{ type: "AnonymizePII", config: { columns: ["email", "phone", "ssn"], method: "Hash" } }],
    compression: { enabled: true, level: "Medium" },
    encryption: { enabled: true, algorithm: "AES256GCM" },
  },
};

let clusters: Cluster[] = [];
let pool: pg.Pool | undefined;
let app: RunningApp | undefined;
let sourceClient: pg.Client | undefined;
const closers: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  const cpus = os.cpus().length;
  const revision = JSON.parse(process.env.BENCH_REVISION ?? "{}") as { commit?: string; changed?: string[]; sourcesSha256?: string };
  log(`API benchmark${QUICK ? " (--quick)" : ""}${PROFILE ? " (--profile: figures skewed by the profiler)" : ""}: ${cpus} CPUs (${os.cpus()[0]?.model ?? "?"}), node ${process.version}`);
  log(
    `server sources: commit ${revision.commit ?? "unknown"}${revision.changed?.length ? ` with uncommitted changes to ${revision.changed.join(", ")}` : ", no uncommitted change"} (bundled sources sha256 ${revision.sourcesSha256 ?? "?"})`,
  );
  log(`load: ${CONCURRENCY} requests in flight from a second process, ${WARMUP} s warm-up + ${DURATION} s measured per target`);

  let waited = { waitedS: 0, stillRunning: false };
  if (!QUICK) waited = await waitForOtherBenchmarks();
  const r: Record<string, number | string | boolean | null | undefined> = {
    cpus,
    quick: QUICK,
    profiled: PROFILE,
    node: process.version,
    concurrency: CONCURRENCY,
    duration_s: DURATION,
    warmup_s: WARMUP,
    server_commit: revision.commit,
    server_uncommitted_files: revision.changed?.length ?? null,
    server_sources_sha256: revision.sourcesSha256,
    waited_for_other_benchmarks_s: round(waited.waitedS, 0),
    other_benchmark_running: waited.stillRunning,
  };

  // 1. Three clusters, the server, a streaming replication of a seeded tenant.
  log("starting three PostgreSQL clusters (control plane, source, target)…");
  clusters = await Promise.all([startCluster(), startCluster(), startCluster()]);
  const [control, east, west] = clusters as [Cluster, Cluster, Cluster];
  await control.createDatabase("controlplane");
  await east.createDatabase("production_db");
  await west.createDatabase("replica_db");
  await Promise.all(clusters.map(findPostmaster));
  sourceClient = await east.connect("production_db");
  await seedTenant(sourceClient, TENANT_USERS);
  pool = createPool(control.url("controlplane"));
  const dataDir = mkdtempSync(join(os.tmpdir(), "heliosdb-bench-api-"));
  closers.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  // The clusters listen on loopback, which the destination policy denies unless allowed.
  const allowHosts = [`${east.host}:${east.port}`, `${west.host}:${west.port}`];
  // Rate limits on, as `serve` has them, with the default tier (the JWT's and the API key's) too large to refuse.
  const rateLimits = { tiers: { Standard: { perMinute: 6e9, burst: 1e8 } } };
  app = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, allowHosts, ...(RATE_LIMITS ? { rateLimits } : {}), log: (m) => log(`server: ${m}`) });
  const token = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "bench" });
  log(`server: REST ${app.urls.rest}, gRPC ${app.urls.grpc} (default settings; ${RATE_LIMITS ? `rate limits on, Standard ${rateLimits.tiers.Standard.perMinute}/min burst ${rateLimits.tiers.Standard.burst}` : "rate limits OFF"})`);

  const rest = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${app!.urls.rest}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const expectStatus = (res: { status: number; body: unknown }, status: number, what: string) => {
    if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  };
  for (const [id, cluster, region, database] of [[EAST, east, "us-east-1", "production_db"], [WEST, west, "us-west-2", "replica_db"]] as const) {
    const body = { connection_id: id, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database, sslmode: "disable", region, owner_tenant_id: "tenant-123" };
    expectStatus(await rest("POST", "/connections", body), 201, `registering ${region}`);
  }
  const keyMade = await rest("POST", "/api-keys", { name: "bench", roles: ["Admin"], tier: "Standard" });
  expectStatus(keyMade, 201, "creating an API key");
  const apiKey = keyMade.body.secret as string;
  const created = await rest("POST", "/replications", CREATE);
  expectStatus(created, 201, "creating the replication");
  const id = created.body.id as string;
  expectStatus(await rest("POST", `/replications/${id}/start`, { from_checkpoint: "auto", initial_sync_parallelism: 4 }), 200, "starting it");
  log(`replication ${id} (the spec's §2.1.1 request, ${TENANT_USERS} users seeded): started, waiting for Streaming…`);
  await waitFor(async () => (await rest("GET", `/replications/${id}`)).body?.status === "Streaming", "Streaming", 180_000);
  // A change through CDC too, so that every part of the answer is filled in.
  const rowsReplicated = async () => Number((await rest("GET", `/replications/${id}`)).body?.statistics?.total_rows_replicated);
  const copied = await rowsReplicated();
  await sourceClient.query("INSERT INTO users (name, email) VALUES ('bench', 'bench@example.com')");
  await waitFor(async () => (await rowsReplicated()) > copied, "the change replicated", 60_000);
  await sleep(QUICK ? 1000 : 3000);

  // 2. The exact bytes of both answers.
  const path = `/v1/replications/${id}`;
  const restAnswers = [];
  for (let i = 0; i < 3; i++) {
    restAnswers.push(await rawGet(app.ports.http, path, token));
    await sleep(300);
  }
  const recordedRest = restAnswers.at(-1)!;
  if (recordedRest.status !== 200) throw new Error(`GET ${path}: HTTP ${recordedRest.status} ${recordedRest.body}`);
  const restStable = restAnswers.every((a) => a.body.equals(recordedRest.body));
  const request = toBinary(GetReplicationRequestSchema, create(GetReplicationRequestSchema, { id }));
  const grpcMessage = await rawGrpc(app.ports.grpc, GET_METHOD, request, token);
  const replication = fromBinary(ReplicationSchema, grpcMessage);
  const json = JSON.parse(recordedRest.body.toString("utf8"));
  if (replication.id !== id || replication.status !== ReplicationStatus.STREAMING || json.id !== id || json.status !== "Streaming") {
    throw new Error(`the recorded answers are not the streaming replication: REST ${recordedRest.body}`);
  }
  const recorded: Recorded = { restBody: recordedRest.body, restContentType: recordedRest.contentType, grpcMessage };
  // The static prefixes the load process checks every answer against: what comes before the live figures.
  const restPrefixEnd = recorded.restBody.indexOf(',"current_state":');
  if (restPrefixEnd < 0) throw new Error("the recorded REST answer has no current_state");
  const restPrefix = recorded.restBody.subarray(0, restPrefixEnd);
  const { tenantId, status, source, target, config } = replication;
  const grpcPrefix = Buffer.from(toBinary(ReplicationSchema, create(ReplicationSchema, { id, tenantId, status, source, target, config })));
  if (!grpcMessage.subarray(0, grpcPrefix.length).equals(grpcPrefix)) throw new Error("the recorded gRPC message does not start with its fields 1-6");
  log(
    `recorded: REST ${recorded.restBody.length} bytes of ${recorded.restContentType} (${restStable ? "the same bytes 3 times in a row" : "NOT the same bytes 3 times in a row"}; ` +
      `${Object.keys(json).length} top-level fields, ${json.statistics?.total_rows_replicated} rows replicated), gRPC message ${grpcMessage.length} bytes`,
  );
  r.rest_response_bytes = recorded.restBody.length;
  r.grpc_response_bytes = grpcMessage.length;
  r.rest_response_stable = restStable;
  r.rest_static_prefix_bytes = restPrefix.length;
  r.grpc_static_prefix_bytes = grpcPrefix.length;
  r.length_tolerance = LENGTH_TOLERANCE;
  writeFileSync(join(HERE, "recorded-rest.json"), recorded.restBody);
  writeFileSync(join(HERE, "recorded-grpc.bin"), grpcMessage);

  // 3. The baselines, answering the same bytes.
  const bareHttp = await startBareHttp(recorded.restBody, recorded.restContentType);
  closers.push(bareHttp.close);
  const bareGrpc = await startBareGrpc(recorded.grpcMessage);
  closers.push(bareGrpc.close);
  const checkHttp = await rawGet(bareHttp.port, path);
  const checkGrpc = await rawGrpc(bareGrpc.port, GET_METHOD, request);
  if (!checkHttp.body.equals(recorded.restBody)) throw new Error("the bare node:http server does not answer the recorded bytes");
  if (checkGrpc.length !== grpcMessage.length) throw new Error(`the bare grpc-js server answers ${checkGrpc.length} bytes, recorded ${grpcMessage.length}`);
  log(`baselines: bare node:http on :${bareHttp.port} (the same bytes), bare grpc-js on :${bareGrpc.port} (${bareGrpc.identical ? "re-encodes the very same bytes" : `re-encodes ${bareGrpc.reencodedBytes} bytes, not byte-identical`})`);
  r.bare_grpc_byte_identical = bareGrpc.identical && checkGrpc.equals(grpcMessage);

  // 4. Load, each target from its own load process; each baseline right after its project counterpart.
  if (PROFILE) {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.setSamplingInterval", { interval: 200 });
  }
  const loadavgStart = os.loadavg()[0]!;
  log(`measuring REST GET ${path} (project, JWT) …`);
  const restM = await measure("REST (project)", { kind: "http", host: "127.0.0.1", port: app.ports.http, path, token, expectedBytes: recorded.restBody.length, prefixHex: restPrefix.toString("hex") });
  await sleep(1000);
  log(`measuring REST GET ${path} (project, API key) …`);
  const restKeyM = await measure("REST API key (project)", { kind: "http", host: "127.0.0.1", port: app.ports.http, path, apiKey, expectedBytes: recorded.restBody.length, prefixHex: restPrefix.toString("hex") });
  await sleep(1000);
  log("measuring the bare node:http baseline …");
  const bareHttpM = await measure("bare node:http", { kind: "http", host: "127.0.0.1", port: bareHttp.port, path, expectedBytes: recorded.restBody.length, prefixHex: restPrefix.toString("hex") });
  await sleep(1000);
  log(`measuring gRPC ${GET_METHOD} (project, JWT) …`);
  const requestHex = Buffer.from(request).toString("hex");
  const grpcM = await measure("gRPC (project)", { kind: "grpc", host: "127.0.0.1", port: app.ports.grpc, path: GET_METHOD, token, requestHex, expectedBytes: grpcMessage.length, prefixHex: grpcPrefix.toString("hex") });
  await sleep(1000);
  log(`measuring gRPC ${GET_METHOD} (project, API key) …`);
  const grpcKeyM = await measure("gRPC API key (project)", { kind: "grpc", host: "127.0.0.1", port: app.ports.grpc, path: GET_METHOD, apiKey, requestHex, expectedBytes: grpcMessage.length, prefixHex: grpcPrefix.toString("hex") });
  await sleep(1000);
  log("measuring the bare grpc-js baseline …");
  const bareGrpcM = await measure("bare grpc-js", { kind: "grpc", host: "127.0.0.1", port: bareGrpc.port, path: GET_METHOD, requestHex, expectedBytes: grpcMessage.length, prefixHex: grpcPrefix.toString("hex") });

  // 5. Results.
  const put = (prefix: string, m: Measured) => {
    r[`${prefix}_req_s`] = Math.round(m.requestsPerSecond);
    r[`${prefix}_p50_ms`] = round(m.p50Ms, 2);
    r[`${prefix}_p99_ms`] = round(m.p99Ms, 2);
    r[`${prefix}_max_ms`] = round(m.maxMs, 2);
    r[`${prefix}_requests`] = m.requests;
    r[`${prefix}_errors`] = m.errors;
    r[`${prefix}_exact_length_share`] = round(m.requests ? m.exactLength / m.requests : NaN);
    r[`${prefix}_cpu_server_s`] = round(m.nodeCpuS, 2);
    r[`${prefix}_cpu_server_us_per_req`] = round((1e6 * m.nodeCpuS) / Math.max(1, m.requests + m.errors), 0);
    r[`${prefix}_cpu_load_s`] = round(m.cpuSeconds, 2);
    r[`${prefix}_cpu_pg_s`] = round(m.pgCpuS, 2);
    r[`${prefix}_cpu_other_s`] = round(m.otherCpuS, 2);
  };
  put("rest", restM);
  put("rest_apikey", restKeyM);
  put("bare_http", bareHttpM);
  put("grpc", grpcM);
  put("grpc_apikey", grpcKeyM);
  put("bare_grpc", bareGrpcM);
  const restRatio = restM.requestsPerSecond / bareHttpM.requestsPerSecond;
  const restKeyRatio = restKeyM.requestsPerSecond / bareHttpM.requestsPerSecond;
  const grpcRatio = grpcM.requestsPerSecond / bareGrpcM.requestsPerSecond;
  const grpcKeyRatio = grpcKeyM.requestsPerSecond / bareGrpcM.requestsPerSecond;
  r.rate_limits = RATE_LIMITS;
  r.rest_vs_bare_http = round(restRatio);
  r.rest_apikey_vs_bare_http = round(restKeyRatio);
  r.grpc_vs_bare_grpc = round(grpcRatio);
  r.grpc_apikey_vs_bare_grpc = round(grpcKeyRatio);
  r.target_ratio = TARGET_RATIO;
  r.rest_target_met = Math.min(restRatio, restKeyRatio) >= TARGET_RATIO;
  r.grpc_target_met = Math.min(grpcRatio, grpcKeyRatio) >= TARGET_RATIO;
  r.loadavg_1m_start = round(loadavgStart, 2);
  r.loadavg_1m_end = round(os.loadavg()[0]!, 2);
  r.total_runtime_s = round((Date.now() - started) / 1000, 1);

  for (const [name, m] of [
    ["REST (project, JWT)", restM],
    ["REST (project, API key)", restKeyM],
    ["bare node:http", bareHttpM],
    ["gRPC (project, JWT)", grpcM],
    ["gRPC (project, API key)", grpcKeyM],
    ["bare grpc-js", bareGrpcM],
  ] as const) printProfile(name, m);

  const rows: string[][] = [];
  const row = (what: string, m: Measured, ratio?: number) =>
    rows.push([
      what,
      fmtRate(m.requestsPerSecond),
      m.p50Ms.toFixed(2),
      m.p99Ms.toFixed(2),
      String(m.errors),
      m.nodeCpuS.toFixed(1),
      m.cpuSeconds.toFixed(1),
      m.pgCpuS.toFixed(1),
      m.otherCpuS.toFixed(1),
      ratio !== undefined ? `${ratio.toFixed(2)}× (target ≥ ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? "met" : "missed"})` : "",
    ]);
  row(`REST GET /v1/replications/{id} (${recorded.restBody.length} B), JWT`, restM, restRatio);
  row("  the same, API key", restKeyM, restKeyRatio);
  row("  bare node:http, same bytes", bareHttpM);
  row(`gRPC GetReplication (${grpcMessage.length} B), JWT`, grpcM, grpcRatio);
  row("  the same, API key", grpcKeyM, grpcKeyRatio);
  row("  bare grpc-js, same message", bareGrpcM);
  const header = ["target", "req/s", "p50 ms", "p99 ms", "errors", "CPU s server", "CPU s load", "CPU s PG", "CPU s other", "project ÷ baseline"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  process.stdout.write(
    `\n${CONCURRENCY} in flight, ${DURATION} s measured after ${WARMUP} s warm-up, per target; CPU seconds are of the measured window ` +
      `(server: the process serving, project or baseline; load: the load process; PG: the three clusters)\n` +
      `${line(header)}\n|${widths.map((w) => "-".repeat(w + 2)).join("|")}|\n${rows.map(line).join("\n")}\n\n`,
  );
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function cleanup(): Promise<void> {
  // A session the server leaves open on a cluster errors when the cluster stops; nothing to report by then.
  process.on("uncaughtException", () => undefined);
  for (const close of closers) await close().catch(() => undefined);
  await app?.close().catch(() => undefined);
  await pool?.end().catch(() => undefined);
  await sourceClient?.end().catch(() => undefined);
  await Promise.all(clusters.map((c) => c.stop().catch(() => undefined)));
}

// Ctrl-C or a kill: stop the clusters before leaving.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`${signal}: stopping the server and the clusters\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  exitCode = 1;
  process.stderr.write(`benchmark failed: ${(e as Error).stack ?? e}\n`);
} finally {
  await cleanup();
}
process.exit(exitCode);
