// The fault suite's failovers: `kill -9` of the server process in each step
// of a failover — after ValidateReplicaHealth's checks; in StopReplication
// with the fence up, after the drain, after the replication stopped; after
// PromoteReplica; after UpdateRouting's switch — while the tenant's clients
// write and follow routing. The dead server's leases (the failover's and
// the replication's) hold until they lapse; then another server takes both,
// runs the interrupted step again (every failover step is re-runnable: each
// saved what it did before going on), and the failover completes. The
// invariant holds each time: every acknowledged write on the new primary,
// the old primary at its fence equal to it, sequences going on, the old
// primary taking no write.
import { waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { PausePoint } from "../../src/controller/failover/deps";
import { FailoverStore } from "../../src/store/failovers";
import { RoutingStore } from "../../src/store/routing";
import type { ControlPlane } from "../../src/testing/control-plane";
import { pausedAt } from "../../src/testing/failover-pauses";
import type { ServerProcess } from "../../src/testing/server-process";
import { EAST, WEST } from "../../src/testing/world";
import { expectFailoverInvariants, snapshot } from "../failover/invariants";
import { startRoutedWriters, type RoutedWriters } from "../failover/writers";
import { startCutoverWorld, type CutoverWorld } from "./cutover-world";

let w: CutoverWorld;
let cp: ControlPlane;
let east: Cluster;
let west: Cluster;
const writers: RoutedWriters[] = [];
const sessions: pg.Client[] = [];

beforeAll(async () => {
  w = await startCutoverWorld("failover-faults");
  ({ cp, east, west } = w);
}, 120_000);

afterAll(async () => {
  w?.writers.push(...writers);
  w?.sessions.push(...sessions);
  await w?.close();
}, 60_000);

const serve = (pause?: PausePoint) => w.serve(pause ? { failoverPause: pause } : {});
const rest = (p: ServerProcess, method: string, path: string, body?: unknown) => w.rest(p, method, path, body);
const clusterOf = (connectionId: string) => w.clusterOf(connectionId);

// Where each point is: the step it stops in.
const POINTS: [PausePoint, number][] = [
  ["validated", 0],
  ["fenced", 1],
  ["drained", 1],
  ["stopped", 1],
  ["promoted", 2],
  ["switched", 3],
];

test.each(POINTS)("killed (kill -9) at %s: another server resumes the failover, which completes; nothing acknowledged is lost", async (point, stepIndex) => {
  const database = `kill_${point}`;
  const first = await serve(point);
  await w.placeTenant(database, 100, first);
  const created = await rest(first, "POST", "/replications", {
    tenant_id: "tenant-123",
    source: { connection_id: EAST, database },
    target: { connection_id: WEST, database },
    config: { qos_tier: "Premium", table_filter: ["users.*", "orders.*", "products.*"] },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id = created.body.id as string;
  expect((await rest(first, "POST", `/replications/${id}/start`, {})).status).toBe(200);
  await waitFor(async () => (await rest(first, "GET", `/replications/${id}`)).body.status === "Streaming", "streaming", 60_000);

  const routing = new RoutingStore(cp.pool);
  const load = startRoutedWriters({
    writers: 3,
    tag: `${point}-`,
    // Read where the control plane keeps it: the servers come and go.
    routing: async () => {
      const r = (await routing.get("tenant-123"))!;
      return { version: r.version, primary: `${r.primary.connectionId}/${r.primary.database}`, writesBlocked: r.writesBlocked };
    },
    connect: (primary) => {
      const [connectionId, db] = primary.split("/") as [string, string];
      return clusterOf(connectionId).connect(db);
    },
  });
  writers.push(load);
  const source = `${EAST}/${database}`;
  const target = `${WEST}/${database}`;
  await waitFor(() => load.committedOn(source) >= 30, "writes on the old primary", 60_000);

  const accepted = await rest(first, "POST", `/replications/${id}/failover`, { reason: `kill at ${point}`, update_routing: true });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  const failoverId = accepted.body.failover_id as string;
  await waitFor(() => pausedAt(cp.pool, failoverId, point), `the failover to reach ${point}`, 60_000);
  await first.kill();

  const failovers = new FailoverStore(cp.pool);
  const held = (await failovers.get(failoverId))!;
  // Nothing was released: the dead server still holds the failover, in the step it died in.
  expect(held.job.lease?.owner).toBe(first.nodeId);
  expect(held.job.steps[stepIndex]!.status).toBe("InProgress");

  const second = await serve();
  await waitFor(async () => !["Pending", "InProgress"].includes((await failovers.get(failoverId))!.job.status), "the failover to end", 90_000);
  const done = (await rest(second, "GET", `/failovers/${failoverId}`)).body;
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.steps.map((s: { status: string }) => s.status)).toEqual(["Completed", "Completed", "Completed", "Completed"]);
  const job = (await failovers.get(failoverId))!.job;
  // The step it died in ran again on the other server; the others once.
  expect(job.steps.map((s) => s.attempts)).toEqual([0, 1, 2, 3].map((i) => (i === stepIndex ? 2 : 1)));
  const { rows: resumed } = await cp.pool.query("SELECT 1 FROM events WHERE details->>'failover_id' = $1 AND details->>'attempt' = '2'", [failoverId]);
  expect(resumed).toHaveLength(1);

  await waitFor(() => load.committedOn(target) >= 20, "writes on the new primary", 60_000);
  await load.stop();
  expect(load.refusals()).toBeGreaterThan(0);
  const oldPrimary = await east.connect(database);
  const newPrimary = await west.connect(database);
  sessions.push(oldPrimary, newPrimary);
  await expectFailoverInvariants({ writers: load, tag: `${point}-`, oldAtFence: await snapshot(oldPrimary), oldPrimary, newPrimary, newKey: target });
  expect((await routing.get("tenant-123"))!).toMatchObject({ failoverId, writesBlocked: false, primary: { connectionId: WEST, database } });
  await second.kill();
}, 240_000);
