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
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seedTenant, startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { PausePoint } from "../../src/controller/failover/deps";
import { FailoverStore } from "../../src/store/failovers";
import { RoutingStore } from "../../src/store/routing";
import { startControlPlane, type ControlPlane } from "../../src/testing/control-plane";
import { installFailoverPauses, pausedAt } from "../../src/testing/failover-pauses";
import { startServerProcess, type ServerProcess } from "../../src/testing/server-process";
import { EAST, WEST } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { expectFailoverInvariants, snapshot } from "../failover/invariants";
import { startRoutedWriters, type RoutedWriters } from "../failover/writers";

let cp: ControlPlane;
let east: Cluster;
let west: Cluster;
let token: string;
const dataDir = mkdtempSync(join(tmpdir(), "heliosdb-failover-faults-"));
const processes: ServerProcess[] = [];
const writers: RoutedWriters[] = [];
const sessions: pg.Client[] = [];
let registered = false;

beforeAll(async () => {
  cp = await startControlPlane();
  await installFailoverPauses(cp.pool);
  [east, west] = await Promise.all([startCluster(), startCluster()]);
  token = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "failover-faults" });
}, 120_000);

afterAll(async () => {
  for (const w of writers) await w.stop().catch(() => undefined);
  for (const s of sessions) await s.end().catch(() => undefined);
  for (const p of processes) await p.kill();
  await Promise.all([east?.stop(), west?.stop()]);
  await cp?.close();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

async function serve(failoverPause?: PausePoint): Promise<ServerProcess> {
  const p = await startServerProcess({
    databaseUrl: cp.url(),
    dataDir,
    tickMs: 200,
    leaseSeconds: 3,
    allowHosts: [`${east.host}:${east.port}`, `${west.host}:${west.port}`],
    ...(failoverPause ? { failoverPause } : {}),
  });
  processes.push(p);
  return p;
}

async function rest(p: ServerProcess, method: string, path: string, body?: unknown) {
  const res = await fetch(`${p.urls.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const clusterOf = (connectionId: string) => (connectionId === EAST ? east : west);

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
  await Promise.all([east.createDatabase(database), west.createDatabase(database)]);
  const seed = await east.connect(database);
  await seedTenant(seed, 100).finally(() => seed.end());
  // The tenant's clients are on this database now.
  await cp.pool.query(
    `INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)
     ON CONFLICT (tenant_id) DO UPDATE SET "primary" = EXCLUDED."primary", version = routing.version + 1, writes_blocked = false`,
    [JSON.stringify({ connectionId: EAST, database, schema: "public", region: "us-east-1" })],
  );

  const first = await serve(point);
  if (!registered) {
    for (const [id, cluster, region] of [[EAST, east, "us-east-1"], [WEST, west, "us-west-2"]] as const) {
      const res = await rest(first, "POST", "/connections", {
        connection_id: id, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, sslmode: "disable", region, owner_tenant_id: "tenant-123",
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    registered = true;
  }
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
