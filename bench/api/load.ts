// The load generator of the API benchmark, run as its own process (forked by
// main.ts, one process per target): N loops, each keeping one request in
// flight, for a warm-up and then a measured window. HTTP goes through one
// keep-alive http.Agent (up to N sockets); gRPC through one @grpc/grpc-js
// client (one HTTP/2 connection, N streams in flight). It reports through IPC
// and exits.
//
// A request counts as an error unless it answers 200 / OK with a body that
// starts with the recorded body's static prefix (id, tenant, status, source,
// target and config: everything before the live figures) and is as long as
// the recorded body, give or take `lengthTolerance`. The tolerance is there
// because a streaming replication's figures move while it is measured (a
// heartbeat transaction every second: LSN, transaction id, rates, ratios,
// uptime), so its answer gains or loses a few bytes; how many answers had
// exactly the recorded length is counted too.
import http from "node:http";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";

export interface LoadRequest {
  kind: "http" | "grpc";
  host: string;
  port: number;
  /** http: the path; grpc: the method, /package.Service/Method. */
  path: string;
  /** Sent as `authorization: Bearer …` (HTTP header or gRPC metadata) when set. */
  token?: string;
  /** Sent as `x-api-key` instead, when set. */
  apiKey?: string;
  /** grpc: the request message, hex. */
  requestHex?: string;
  expectedBytes: number;
  /** The bytes every answer starts with, hex. */
  prefixHex: string;
  /** A body may be this fraction longer or shorter than expectedBytes. */
  lengthTolerance: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  requests: number;
  /** Successful requests whose body had exactly the recorded length. */
  exactLength: number;
  errors: number;
  /** Up to 5 distinct error descriptions with their counts. */
  errorKinds: Record<string, number>;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** CPU seconds this load process used in the measured window. */
  cpuSeconds: number;
}

/** An error description, or EXACT / NEAR: it succeeded with exactly / about the recorded length. */
type Outcome = string;
const EXACT = "exact";
const NEAR = "near";

function checker(r: LoadRequest): (status: string | undefined, body: Buffer, bytes: number) => Outcome {
  const prefix = Buffer.from(r.prefixHex, "hex");
  const slack = Math.ceil(r.expectedBytes * r.lengthTolerance);
  return (status, body, bytes) => {
    if (status !== undefined) return status;
    if (bytes === r.expectedBytes && body.subarray(0, prefix.length).equals(prefix)) return EXACT;
    if (Math.abs(bytes - r.expectedBytes) > slack) return `${bytes} bytes, recorded ${r.expectedBytes} (±${slack})`;
    if (!body.subarray(0, prefix.length).equals(prefix)) return `not the recorded static prefix (${prefix.length} bytes)`;
    return NEAR;
  };
}

function httpCaller(r: LoadRequest): () => Promise<Outcome> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: r.concurrency, maxFreeSockets: r.concurrency });
  const headers: Record<string, string> = r.token ? { authorization: `Bearer ${r.token}` } : r.apiKey ? { "x-api-key": r.apiKey } : {};
  const options: http.RequestOptions = { host: r.host, port: r.port, path: r.path, method: "GET", agent, headers };
  const check = checker(r);
  const prefixBytes = r.prefixHex.length / 2;
  return () =>
    new Promise<Outcome>((resolve) => {
      const req = http.request(options, (res) => {
        let bytes = 0;
        // Kept until the static prefix is in (usually the first chunk holds the whole body).
        const head: Buffer[] = [];
        res.on("data", (chunk: Buffer) => {
          if (bytes < prefixBytes) head.push(chunk);
          bytes += chunk.length;
        });
        res.on("end", () => {
          const body = head.length === 1 ? head[0]! : Buffer.concat(head);
          resolve(check(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`, body, bytes));
        });
        res.on("error", (e) => resolve(`response error: ${e.message}`));
      });
      req.on("error", (e) => resolve(`request error: ${e.message}`));
      req.end();
    });
}

async function grpcCaller(r: LoadRequest): Promise<() => Promise<Outcome>> {
  const client = new grpc.Client(`${r.host}:${r.port}`, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
  const request = Buffer.from(r.requestHex ?? "", "hex");
  const metadata = new grpc.Metadata();
  if (r.token) metadata.set("authorization", `Bearer ${r.token}`);
  else if (r.apiKey) metadata.set("x-api-key", r.apiKey);
  const identity = (b: Buffer) => b;
  const check = checker(r);
  const none = Buffer.alloc(0);
  return () =>
    new Promise<Outcome>((resolve) => {
      client.makeUnaryRequest<Buffer, Buffer>(r.path, identity, identity, request, metadata, (e, value) => {
        if (e) resolve(`gRPC ${grpc.status[e.code] ?? e.code}: ${e.details}`);
        else resolve(check(undefined, value ?? none, value?.length ?? 0));
      });
    });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function run(r: LoadRequest): Promise<LoadResult> {
  const call = r.kind === "http" ? httpCaller(r) : await grpcCaller(r);
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let exact = 0;
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  const t0 = performance.now();
  const measureFrom = t0 + r.warmupMs;
  const measureTo = measureFrom + r.durationMs;
  // CPU of this process in the measured window (timers: the loops keep the event loop busy, so they fire a little late).
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let cpuInWindow: NodeJS.CpuUsage | undefined;
  // The parent accounts its own CPU (and profiles) between these two messages.
  const cpuStartTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    process.send!({ phase: "measuring" });
  }, r.warmupMs);
  const cpuEndTimer = setTimeout(() => {
    cpuInWindow = process.cpuUsage(cpuAtStart);
    process.send!({ phase: "measured" });
  }, r.warmupMs + r.durationMs);

  const loop = async () => {
    while (performance.now() < measureTo) {
      const start = performance.now();
      const outcome = await call();
      const end = performance.now();
      // A request counts in the window it completes in.
      if (end < measureFrom || end > measureTo) continue;
      if (outcome !== EXACT && outcome !== NEAR) {
        errors++;
        if (errorKinds[outcome] !== undefined || Object.keys(errorKinds).length < 5) errorKinds[outcome] = (errorKinds[outcome] ?? 0) + 1;
        continue;
      }
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = end - start;
      if (outcome === EXACT) exact++;
    }
  };
  await Promise.all(Array.from({ length: r.concurrency }, loop));
  clearTimeout(cpuStartTimer);
  clearTimeout(cpuEndTimer);
  const cpuUsed = cpuInWindow ?? process.cpuUsage(cpuAtStart);
  const sorted = latencies.slice(0, count).sort();
  let sum = 0;
  for (const x of sorted) sum += x;
  const seconds = r.durationMs / 1000;
  return {
    requests: count,
    exactLength: exact,
    errors,
    errorKinds,
    seconds,
    requestsPerSecond: count / seconds,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: count ? sorted[count - 1]! : NaN,
    meanMs: count ? sum / count : NaN,
    cpuSeconds: (cpuUsed.user + cpuUsed.system) / 1e6,
  };
}

process.once("message", (message) => {
  run(message as LoadRequest).then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (e: Error) => process.send!({ error: e.stack ?? String(e) }, () => process.exit(1)),
  );
});
