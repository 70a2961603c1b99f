// The fault suite: a source transaction open across each kind of pipeline
// start, driven through the API under a write load — the first start, a
// resume, a PATCH that restarts the pipeline with a new table, a new server
// process after a crash (kill -9), and a takeover by another server. Each
// ends with the API reporting the replica caught up and source and replica
// equal by checksum.
import { afterAll, beforeAll, expect, test } from "vitest";
import { waitFor } from "@heliosdb/replication-engine/testing";
import type { RunningApp } from "../../src/app";
import { startServerProcess, type ServerProcess } from "../../src/testing/server-process";
import { startWorld, type World } from "../../src/testing/world";
import { events, expectConverged, expectStatusChainConsistent, openTransaction, replication, startLoad, waitForStatus } from "./harness";

let world: World;
const processes: ServerProcess[] = [];
beforeAll(async () => {
  world = await startWorld({ users: 500 });
}, 120_000);
afterAll(async () => {
  for (const p of processes) await p.kill();
  await world?.close();
}, 60_000);

const on = (server: { urls: { rest: string } }) => (method: string, path: string, body?: unknown) => world.rest(method, path, body, server);

test("the first start: the slot waits for the transaction, which then arrives whole", async () => {
  const rest = on(world.app);
  const id = await world.createReplication("faults_first", ["users", "orders", "products"]);
  const load = startLoad(world.east, "production_db");
  try {
    const tx = await openTransaction(world.east, "production_db");
    try {
      expect((await rest("POST", `/replications/${id}/start`)).status).toBe(200);
      await waitForStatus(rest, id, "Syncing");
      await tx.commit();
    } finally {
      await tx.end();
    }
    await waitForStatus(rest, id, "Streaming");
  } finally {
    await load.stop();
  }
  await expectConverged(rest, id, world.east, world.west, "faults_first");
  expectStatusChainConsistent(await events(world.pool, id));
}, 120_000);

test("a resume after pause, and a PATCH that restarts the pipeline with a new table", async () => {
  const rest = on(world.app);
  const id = await world.createReplication("faults_resume", ["users", "orders"]);
  await rest("POST", `/replications/${id}/start`);
  await waitForStatus(rest, id, "Streaming");
  const load = startLoad(world.east, "production_db");
  let tx = await openTransaction(world.east, "production_db");
  try {
    expect((await rest("POST", `/replications/${id}/pause`)).status).toBe(200);
    await waitForStatus(rest, id, "Paused");
    await tx.commit();
    tx = await openTransaction(world.east, "production_db");
    await rest("POST", `/replications/${id}/start`);
    await waitForStatus(rest, id, "Streaming");
    await tx.commit();
  } finally {
    await tx.end();
    await load.stop();
  }
  await expectConverged(rest, id, world.east, world.west, "faults_resume", ["users", "orders"]);
  const syncs = async () => (await events(world.pool, id)).filter((e) => e.event_type === "StatusChanged" && e.details.to === "Syncing").length;
  const copiedBefore = await syncs();
  const again = startLoad(world.east, "production_db");
  tx = await openTransaction(world.east, "production_db");
  try {
    const patched = await rest("PATCH", `/replications/${id}`, { config: { table_filter: ["users.*", "orders.*", "products.*"] } });
    expect(patched.status).toBe(200);
    // The added table's copy waits for the transaction in flight.
    await waitFor(async () => (await syncs()) > copiedBefore, "the added table's copy");
    await tx.commit();
    await waitFor(async () => (await events(world.pool, id)).some((e) => e.event_type === "TablesSynced" && e.details.tables === "products"), "products copied");
  } finally {
    await tx.end();
    await again.stop();
  }
  await expectConverged(rest, id, world.east, world.west, "faults_resume");
  expectStatusChainConsistent(await events(world.pool, id));
}, 180_000);

test("a server killed (kill -9) while a transaction is open: a new process, then another server, take over from the checkpoint", async () => {
  // Only servers in processes of their own run replications here; their leases outlive their figures' freshness (5 s).
  await world.stopServer(world.app);
  const options = { databaseUrl: world.control.url("controlplane"), dataDir: world.dataDir, tickMs: 200, leaseSeconds: 8, allowHosts: world.allowHosts };
  const first = await startServerProcess(options);
  processes.push(first);
  let rest = on(first);
  const id = await world.createReplication("faults_crash", ["users", "orders", "products"], {}, first);
  await rest("POST", `/replications/${id}/start`);
  await waitForStatus(rest, id, "Streaming");
  const before = await replication(rest, id);
  let other: RunningApp | undefined;
  const load = startLoad(world.east, "production_db");
  let tx = await openTransaction(world.east, "production_db");
  try {
    // A crash, then the server started again (a new process).
    await first.kill();
    const second = await startServerProcess(options);
    processes.push(second);
    rest = on(second);
    // Until the dead server's lease runs out nobody runs it, and the API does not call its figures live.
    await waitFor(async () => (await replication(rest, id)).health === "Unknown", "health Unknown while nobody owns it", 20_000);
    await waitFor(async () => {
      const r = await replication(rest, id);
      return r.status === "Streaming" && r.health === "Healthy";
    }, "the new process to own it", 60_000);
    await tx.commit();

    // Another server on the same control plane takes over when the owner dies.
    other = await world.startServer({ leaseSeconds: 8 });
    tx = await openTransaction(world.east, "production_db");
    await second.kill();
    rest = on(other);
    await waitFor(async () => other!.orchestrator.figures(id)?.status === "Streaming", "the other server to take over", 60_000);
    await tx.commit();
  } finally {
    await tx.end();
    await load.stop();
  }
  const after = await expectConverged(rest, id, world.east, world.west, "faults_crash");
  // Lifetime totals went on from the checkpoint through both takeovers.
  expect(Number(after.statistics.total_rows_replicated)).toBeGreaterThan(Number(before.statistics.total_rows_replicated));
  expectStatusChainConsistent(await events(world.pool, id));
  world.app = other!;
}, 240_000);
