// The SDK benchmark: client.replications.get through @heliosdb/replication-sdk
// on each transport — REST, gRPC-web and gRPC — beside the same call made
// raw, in the same process, against the same server: REST as a bare fetch
// and JSON.parse, gRPC-web and gRPC as a plain Connect-ES client of the
// contract. What the SDK adds (the request message from parameters, the
// retry and error machinery, the credential headers, the REST mapping back
// to a message) shows as the ratio of calls per second, SDK over raw.
// Prints progress, a table, and as its last line one JSON object.
//
//   npm run bench:sdk               5 s measured per target after 2 s of warm-up, 16 calls in flight
//   npm run bench:sdk -- --quick    1 s + 1 s: checks it works
//   options: --duration=S --warmup=S --concurrency=N --rounds=N
import os from "node:os";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ReplicationService } from "@heliosdb/replication-proto";
import { HeliosDBReplicationClient } from "../../packages/sdk/src/index.node";
import { grpc } from "../../packages/sdk/src/node/index";
import { startWorld } from "../../packages/server/src/testing/world";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string?]).map(([k, v]) => [k, v ?? "true"]));
const QUICK = args.has("quick");
const num = (name: string, full: number, quick: number) => Number(args.get(name) ?? (QUICK ? quick : full));
const DURATION_S = num("duration", 5, 1);
const WARMUP_S = num("warmup", 2, 1);
const CONCURRENCY = num("concurrency", 16, 16);
/** Each pair (raw and SDK, in alternating order) is measured this many times; the medians are compared. */
const ROUNDS = num("rounds", 3, 1);
const TARGET = 0.9;

const started = Date.now();
const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Rate = { perS: number; perCpuS: number };
/** Calls a second, and calls per CPU-second of this process (server and client), in the measured window. */
async function rate(call: () => Promise<unknown>): Promise<Rate> {
  let counting = false;
  let calls = 0;
  let stop = false;
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (!stop) {
      await call();
      if (counting) calls++;
    }
  });
  await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
  counting = true;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, DURATION_S * 1000));
  counting = false;
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(loops);
  return { perS: calls / seconds, perCpuS: calls / ((cpu.user + cpu.system) / 1e6) };
}

log(`SDK benchmark${QUICK ? " (--quick)" : ""}: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), node ${process.version}; ${CONCURRENCY} calls in flight, ${WARMUP_S} s warm-up + ${DURATION_S} s per measure, ${ROUNDS} rounds`);
log(`server sources: ${process.env.BENCH_REVISION ?? "?"}`);
const world = await startWorld({ users: 100 });
try {
  const id = await world.createReplication("bench_sdk", ["users"]);
  const token = world.token;
  const headers = { authorization: `Bearer ${token}` };
  const root = world.app.urls.rest.replace(/\/v1$/, "");
  const raw = {
    rest: async () => {
      const res = await fetch(`${world.app.urls.rest}/replications/${id}`, { headers });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return JSON.parse(await res.text());
    },
    "grpc-web": (() => {
      const client = createClient(ReplicationService, createGrpcWebTransport({ baseUrl: root }));
      return () => client.getReplication({ id }, { headers });
    })(),
    grpc: (() => {
      const client = createClient(ReplicationService, createGrpcTransport({ baseUrl: world.app.urls.grpc }));
      return () => client.getReplication({ id }, { headers });
    })(),
  };
  const sdk = {
    // The Node entry, as Node resolves the package: its REST timeouts are kept by the connection pool.
    rest: new HeliosDBReplicationClient({ token, baseUrl: world.app.urls.rest }),
    "grpc-web": new HeliosDBReplicationClient({ token, baseUrl: world.app.urls.rest, transport: "grpc-web" }),
    grpc: new HeliosDBReplicationClient({ token, baseUrl: world.app.urls.rest, transport: grpc(world.app.urls.grpc) }),
  };
  // Both answer the same replication before anything is measured.
  for (const t of ["rest", "grpc-web", "grpc"] as const) {
    const [a, b] = await Promise.all([raw[t](), sdk[t].replications.get(id)]);
    if ((a as { id: string }).id !== id || b.id !== id) throw new Error(`${t}: the raw call and the SDK disagree on the replication`);
  }
  const results: Record<string, { raw: number[]; sdk: number[]; rawCpu: number[]; sdkCpu: number[] }> = {};
  for (const t of ["rest", "grpc-web", "grpc"] as const) {
    results[t] = { raw: [], sdk: [], rawCpu: [], sdkCpu: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Raw first in even rounds, the SDK first in odd ones: a drift of the machine over the run favours neither.
      const measureSdk = () => rate(() => sdk[t].replications.get(id));
      let r: Rate, k: Rate;
      if (round % 2 === 0) {
        r = await rate(raw[t]);
        k = await measureSdk();
      } else {
        k = await measureSdk();
        r = await rate(raw[t]);
      }
      results[t].raw.push(r.perS);
      results[t].sdk.push(k.perS);
      results[t].rawCpu.push(r.perCpuS);
      results[t].sdkCpu.push(k.perCpuS);
      log(`  ${t} round ${round + 1}: raw ${Math.round(r.perS)} calls/s (${Math.round(r.perCpuS)} per CPU-s), SDK ${Math.round(k.perS)} calls/s (${Math.round(k.perCpuS)} per CPU-s)`);
    }
  }
  const ratio = (t: string) => Number((median(results[t]!.sdk) / median(results[t]!.raw)).toFixed(3));
  // Less moved by what else the machine runs than calls a second: the CPU this process spent on each call.
  const cpuRatio = (t: string) => Number((median(results[t]!.sdkCpu) / median(results[t]!.rawCpu)).toFixed(3));
  console.log("\n| transport | raw calls/s (median) | SDK calls/s (median) | SDK ÷ raw | per CPU-second: SDK ÷ raw |");
  console.log("|---|---:|---:|---:|---:|");
  for (const t of Object.keys(results)) {
    const verdict = `target ≥ ${TARGET}: ${ratio(t) >= TARGET ? "met" : "missed"}`;
    console.log(`| ${t} | ${Math.round(median(results[t]!.raw))} | ${Math.round(median(results[t]!.sdk))} | ${ratio(t)}× (${verdict}) | ${cpuRatio(t)}× |`);
  }
  console.log(
    JSON.stringify({
      cpus: os.cpus().length,
      node: process.version,
      quick: QUICK,
      concurrency: CONCURRENCY,
      duration_s: DURATION_S,
      rounds: ROUNDS,
      revision: process.env.BENCH_REVISION ?? "",
      raw_rest_calls_s: Math.round(median(results.rest!.raw)),
      sdk_rest_calls_s: Math.round(median(results.rest!.sdk)),
      raw_grpc_web_calls_s: Math.round(median(results["grpc-web"]!.raw)),
      sdk_grpc_web_calls_s: Math.round(median(results["grpc-web"]!.sdk)),
      raw_grpc_calls_s: Math.round(median(results.grpc!.raw)),
      sdk_grpc_calls_s: Math.round(median(results.grpc!.sdk)),
      sdk_vs_raw_rest: ratio("rest"),
      sdk_vs_raw_grpc_web: ratio("grpc-web"),
      sdk_vs_raw_grpc: ratio("grpc"),
      sdk_vs_raw_per_cpu_s: { rest: cpuRatio("rest"), grpc_web: cpuRatio("grpc-web"), grpc: cpuRatio("grpc") },
      target: TARGET,
    }),
  );
} finally {
  await world.close();
}
