// A control request reconciles the one replication it changed: on the server
// that took it at once, and on the server that runs it as soon as that one
// hears the NOTIFY. The servers here pass only every ten minutes, so
// everything a test sees happen within its bounds was done by a signal, not
// by a periodic pass.
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { RunningApp } from "../app";
import { startWorld, type World } from "../testing/world";

let world: World;
let second: RunningApp;
// No periodic pass within a test (the first one runs at start), and leases that outlive the tests.
const SLOW = { tickMs: 600_000, leaseSeconds: 1800 };

beforeAll(async () => {
  world = await startWorld({ users: 200, app: SLOW });
  second = await world.startServer();
}, 180_000);

afterAll(async () => {
  await world?.close();
}, 120_000);

const via = (app: RunningApp) => (method: string, path: string, body?: unknown) => world.rest(method, path, body, app);
const status = async (id: string) => (await world.rest("GET", `/replications/${id}`)).body.status as string;
const leaseOwner = async (id: string) => (await world.pool.query("SELECT owner FROM leases WHERE replication_id = $1", [id])).rows[0]?.owner as string | undefined;
const slot = async (id: string) => (await world.source.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [`heliosdb_${id.replace(/-/g, "")}`])).rowCount;

/** The server that runs the replication now, and the other one. */
async function owner(id: string): Promise<{ owner: RunningApp; other: RunningApp }> {
  await waitFor(() => [world.app, second].some((app) => app.orchestrator.figures(id)), "a server to run it", 30_000);
  const owner = world.app.orchestrator.figures(id) ? world.app : second;
  return { owner, other: owner === world.app ? second : world.app };
}

test("a start reconciles its replication only; the node's other replications wait for a pass", async () => {
  const started = await world.createReplication("signals_started", ["products"]);
  const waiting = await world.createReplication("signals_waiting", ["products"]);
  // Stored as running without a control request (as if its signal had been lost): no server knows yet.
  await world.pool.query("UPDATE replications SET desired = 'running' WHERE id = $1", [waiting]);
  const res = await world.rest("POST", `/replications/${started}/start`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  await owner(started);
  // A full pass on the server that took the request would have started it too (as poke() did before).
  expect(await leaseOwner(waiting)).toBeUndefined();
  expect(world.app.orchestrator.figures(waiting) ?? second.orchestrator.figures(waiting)).toBeUndefined();
  // The pass still takes over what nobody runs.
  await world.app.orchestrator.poke();
  expect(await leaseOwner(waiting)).toBe(world.app.orchestrator.nodeId);
  await waitFor(async () => (await status(waiting)) === "Streaming", "the waiting one to stream", 60_000);
  for (const id of [started, waiting]) expect((await world.rest("POST", `/replications/${id}/stop`)).status).toBe(200);
}, 120_000);

test("pause, start, a live PATCH, stop and delete through the server that does not run it reach its owner at once", async () => {
  const id = await world.createReplication("signals_elsewhere", ["users", "products"]);
  expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitFor(async () => (await status(id)) === "Streaming", "Streaming", 60_000);

  let { owner: runner, other } = await owner(id);
  const paused = await via(other)("POST", `/replications/${id}/pause`);
  expect(paused.status, JSON.stringify(paused.body)).toBe(200);
  await waitFor(() => !runner.orchestrator.figures(id), "the owner to let the pipeline go", 30_000);
  // It keeps the lease for the watch of the paused slot.
  expect(await leaseOwner(id)).toBe(runner.orchestrator.nodeId);

  // The server that took the start cannot have the lease (the owner watches the slot): only the owner,
  // hearing the signal, lets the watch go. It then runs it, unless the server that took the start tries
  // again in between (its own reconciliation runs beside the signal) — either way without a pass.
  expect((await via(other)("POST", `/replications/${id}/start`)).status).toBe(200);
  const running = () => [runner, other].some((app) => !!app.orchestrator.figures(id));
  await waitFor(async () => (await status(id)) === "Streaming" && running(), "a server to run it again", 60_000).catch(async (e) => {
    // What to look at when it did not: the status, who holds the lease, what the servers recorded.
    const events = (await world.pool.query("SELECT event_type, message FROM events WHERE replication_id = $1 ORDER BY id", [id])).rows;
    throw new Error(`${(e as Error).message}: ${await status(id)}, lease ${await leaseOwner(id)}, ${JSON.stringify(events).slice(-1500)}`);
  });

  ({ owner: runner, other } = await owner(id));
  const patched = await via(other)("PATCH", `/replications/${id}`, { config: { max_lag_seconds: 77 } });
  expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  const config = () => runner.orchestrator.ownedFigures().find((o) => o.row.id === id)?.row.config.maxLagSeconds;
  await waitFor(() => config() === 77, "the owner's pipeline to take the new lag threshold", 30_000);

  // A stop waits for the owner to let go and drop the slot: within a lease period and two passes (an hour
  // here) without the signal.
  const stopped = await via(other)("POST", `/replications/${id}/stop`);
  expect(stopped.status, JSON.stringify(stopped.body)).toBe(200);
  expect(await slot(id)).toBe(0);
  expect(runner.orchestrator.figures(id)).toBeUndefined();
  expect(await leaseOwner(id)).toBeUndefined();
  expect((await via(other)("DELETE", `/replications/${id}`)).status).toBe(204);
}, 180_000);
