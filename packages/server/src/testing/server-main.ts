// A server in a process of its own, for tests that kill it (a crash, not a
// shutdown: its leases stay until they expire). Reads its options from
// HELIOSDB_TEST_SERVER (JSON) and prints one JSON line once it serves.
import { startApp } from "../app";
import { createPool } from "../store/db";
import type { ServerProcessOptions } from "./server-process";
import { pauseAt } from "./failover-pauses";
import { testJobKinds } from "./test-jobs";

const options = JSON.parse(process.env.HELIOSDB_TEST_SERVER!) as ServerProcessOptions;
// On SIGUSR2 a full collection, then the heap's and buffers' use as one JSON line: what the server holds, not
// garbage waiting for the GC (server-process.ts's memory()).
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  process.on("SIGUSR2", () => {
    gc();
    const { heapUsed, external } = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ memory: { heapUsed, external } })}\n`);
  });
}
const db = createPool(options.databaseUrl);
let nodeId = "";
const app = await startApp({
  db,
  dataDir: options.dataDir,
  host: "127.0.0.1",
  port: 0,
  grpcPort: 0,
  tickMs: options.tickMs,
  ...(options.leaseSeconds ? { leaseSeconds: options.leaseSeconds } : {}),
  ...(options.allowHosts ? { allowHosts: options.allowHosts } : {}),
  ...(options.webSocket ? { webSocket: options.webSocket } : {}),
  ...(options.testJobs ? { jobKinds: testJobKinds(db) } : {}),
  ...(options.failoverPause ? { failover: { pause: pauseAt(db, options.failoverPause, () => nodeId) } } : {}),
  ...(options.migrationPause ? { migration: { pause: pauseAt(db, options.migrationPause, () => nodeId) } } : {}),
  log: () => undefined,
});
nodeId = app.orchestrator.nodeId;
process.stdout.write(`${JSON.stringify({ rest: app.urls.rest, grpc: app.urls.grpc, nodeId: app.orchestrator.nodeId })}\n`);
