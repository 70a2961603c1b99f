// StreamReplicationMetrics against two real servers on one control plane,
// with real clients: a subscriber on the server that does not run the
// replication gets its owner's figures, the first sample at once; an
// interval out of range is refused naming the field; cancelling and a
// deadline free the subscription; deleting the replication ends every
// stream of it with NOT_FOUND, whatever its interval.
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { RunningApp } from "../../src/app";
import { startWorld, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { startLoad } from "../faults/harness";
import { PROTOCOLS, StreamClients } from "./clients";

let world: World;
let second: RunningApp;
const clients = new Map<RunningApp, StreamClients>();
let tenant456: string;

beforeAll(async () => {
  world = await startWorld({ users: 300 });
  second = await world.startServer();
  for (const app of [world.app, second]) clients.set(app, new StreamClients(app.ports));
  tenant456 = await issueToken(loadSigningKey(world.dataDir), { roles: ["Admin"], subject: "tenant-456-admin", tenantId: "tenant-456" });
}, 180_000);

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await world?.close();
}, 120_000);

const rest = (method: string, path: string, body?: unknown) => world.rest(method, path, body);
const open = () => world.app.feeds.metrics.open + second.feeds.metrics.open;

test("samples of the owner's figures on the other server, every interval, the first at once; cancel and deadline free the subscription; delete ends the streams with NOT_FOUND", async () => {
  const id = await world.createReplication("metrics_live", ["users", "orders"]);
  expect((await rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
  const owner = world.app.orchestrator.figures(id) ? world.app : second;
  const other = owner === world.app ? second : world.app;
  expect(owner.orchestrator.figures(id)).toBeDefined();
  expect(other.orchestrator.figures(id)).toBeUndefined();

  const load = startLoad(world.east, "production_db");
  try {
    const stream = clients.get(other)!.metrics("grpc-js", { replicationId: id, intervalSeconds: 1 }, world.token);
    const samples = await stream.received(4);
    for (const s of samples) {
      expect(s.replicationId).toBe(id);
      expect(Number(s.timestamp.seconds)).toBeGreaterThan(0);
      expect(Number(s.replicationLagBytes ?? 0)).toBeGreaterThanOrEqual(0);
      expect(s.compressionRatio).toBeGreaterThanOrEqual(1);
      // Not measured per pipeline: left unset.
      expect(s.cpuUsagePercent ?? 0).toBe(0);
      expect(Number(s.memoryUsageBytes ?? 0)).toBe(0);
    }
    // The owner's observations, as stored: they move as it observes, never backwards.
    const times = samples.map((s) => Number(s.timestamp.seconds) * 1e9 + Number(s.timestamp.nanos ?? 0));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBeGreaterThan(1);
    await waitFor(() => stream.messages.some((s) => s.rowsPerSecond > 0), "throughput under the load", 30_000);

    // Every protocol; one cancelled by its client, one cut by its deadline.
    const others = PROTOCOLS.filter((p) => p !== "grpc-js").map((p) => clients.get(owner)!.metrics(p, { replicationId: id }, world.token));
    for (const s of others) await s.received(1);
    const cancelled = clients.get(other)!.metrics("connect", { replicationId: id, intervalSeconds: 3600 }, world.token);
    await cancelled.received(1);
    const deadline = clients.get(other)!.metrics("grpc-js", { replicationId: id, intervalSeconds: 3600 }, world.token, { deadlineMs: 1500 });
    await deadline.received(1);
    await waitFor(() => open() === 2 + others.length, "every subscription open");
    cancelled.cancel();
    expect((await deadline.ended).grpcCode).toBe(4);
    await waitFor(() => open() === 1 + others.length, "the cancelled and the timed-out subscriptions freed");

    // Deleted: every stream of it ends with NOT_FOUND, the hourly one too, and nothing stays subscribed.
    const hourly = clients.get(other)!.metrics("grpc", { replicationId: id, intervalSeconds: 3600 }, world.token);
    await hourly.received(1);
    expect((await rest("DELETE", `/replications/${id}`)).status).toBe(204);
    for (const s of [stream, hourly, ...others]) expect(await s.ended).toMatchObject({ code: "NOT_FOUND", details: { replication_id: id } });
    await waitFor(() => open() === 0, "no subscription left");
  } finally {
    await load.stop();
  }
}, 240_000);

test("an interval out of range, an id that is no UUID, another tenant's or a deleted replication: refused on every protocol", async () => {
  const id = await world.createReplication("metrics_refused", ["users"]);
  const gone = await world.createReplication("metrics_gone", ["users"]);
  expect((await rest("DELETE", `/replications/${gone}`)).status).toBe(204);
  const c = clients.get(world.app)!;
  for (const protocol of PROTOCOLS) {
    for (const intervalSeconds of [-1, 3601, 100_000]) {
      const ending = await c.metrics(protocol, { replicationId: id, intervalSeconds }, world.token).ended;
      expect(ending, `${protocol} ${intervalSeconds}`).toMatchObject({ code: "VALIDATION_ERROR", grpcCode: 3 });
      expect((ending.details.violations as { field: string }[]).map((v) => v.field)).toEqual(["interval_seconds"]);
    }
    const bad = await c.metrics(protocol, { replicationId: "nope", intervalSeconds: 1 }, world.token).ended;
    expect(bad.grpcCode, protocol).toBe(3);
    expect(await c.metrics(protocol, { replicationId: id }, tenant456).ended, protocol).toMatchObject({ code: "NOT_FOUND", details: { replication_id: id } });
    expect(await c.metrics(protocol, { replicationId: gone }, world.token).ended, protocol).toMatchObject({ code: "NOT_FOUND" });
  }
  // The bounds themselves are accepted.
  for (const intervalSeconds of [1, 3600]) {
    const s = c.metrics("grpc-js", { replicationId: id, intervalSeconds }, world.token);
    expect((await s.received(1))[0]!.replicationId).toBe(id);
    s.cancel();
  }
  await waitFor(() => open() === 0, "no subscription left");
}, 120_000);
