// The fault suite's migrations: `kill -9` of the server process in each
// phase of a migration — in BulkCopy while it copies; in CDCCatchup once the
// lag holds; in Cutover with the fence up, after the drain, after the
// routing switch — while the tenant's clients write and follow routing. The
// dead server's leases (the migration's and its carrier replication's) hold
// until they lapse; then another server takes both, runs the interrupted
// phase again (every phase is re-runnable: each saved what it did before
// going on), and the migration completes. The invariant holds each time:
// every acknowledged write on the target, the source at its fence equal to
// it, sequences going on, the source taking no write.
import { waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { MigrationPausePoint } from "../../src/controller/migration/deps";
import { RoutingStore } from "../../src/store/routing";
import { MigrationStore } from "../../src/store/tenant-migrations";
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
  w = await startCutoverWorld("migration-faults");
  ({ cp, east, west } = w);
}, 120_000);

afterAll(async () => {
  w?.writers.push(...writers);
  w?.sessions.push(...sessions);
  await w?.close();
}, 60_000);

const serve = (pause?: MigrationPausePoint) => w.serve(pause ? { migrationPause: pause } : {});
const rest = (p: ServerProcess, method: string, path: string, body?: unknown) => w.rest(p, method, path, body);
const clusterOf = (connectionId: string) => w.clusterOf(connectionId);

// Where each point is: the phase it stops in.
const POINTS: [MigrationPausePoint, number][] = [
  ["copying", 0],
  ["caught-up", 1],
  ["fenced", 2],
  ["drained", 2],
  ["switched", 2],
];

test.each(POINTS)("killed (kill -9) at %s: another server resumes the migration, which completes; nothing acknowledged is lost", async (point, phaseIndex) => {
  const database = `mkill_${point.replace("-", "_")}`;
  const first = await serve(point);
  await w.placeTenant(database, 2_000, first);

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
  await waitFor(() => load.committedOn(source) >= 30, "writes on the source", 60_000);

  const accepted = await rest(first, "POST", "/migrations", {
    tenant_id: "tenant-123",
    source_region: "us-east-1",
    target_region: "us-west-2",
    migration_config: { bulk_copy_parallelism: 2 },
  });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  const id = accepted.body.id as string;
  await waitFor(() => pausedAt(cp.pool, id, point), `the migration to reach ${point}`, 90_000);
  await first.kill();

  const migrations = new MigrationStore(cp.pool);
  const held = (await migrations.get(id))!;
  // Nothing was released: the dead server still holds the migration, in the phase it died in.
  expect(held.job.lease?.owner).toBe(first.nodeId);
  expect(held.job.steps[phaseIndex]!.status).toBe("InProgress");

  const second = await serve();
  await waitFor(async () => !["Pending", "InProgress"].includes((await migrations.get(id))!.job.status), "the migration to end", 120_000);
  const done = (await rest(second, "GET", `/migrations/${id}`)).body;
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.phases.map((p: { status: string }) => p.status)).toEqual(["Completed", "Completed", "Completed"]);
  expect(Number(done.downtime_ms)).toBeGreaterThan(0);
  // Killed after the switch, the held snapshot died with the server: the verification is said not to have been made.
  if (point === "switched") expect(done.message).toMatch(/^not verified: the server that switched the routing stopped before its verification/);
  else expect(done.message).toBe("");
  const job = (await migrations.get(id))!.job;
  // The phase it died in ran again on the other server; the others once.
  expect(job.steps.map((s) => s.attempts)).toEqual([0, 1, 2].map((i) => (i === phaseIndex ? 2 : 1)));
  const { rows: resumed } = await cp.pool.query("SELECT 1 FROM events WHERE details->>'migration_id' = $1 AND details->>'attempt' = '2'", [id]);
  expect(resumed).toHaveLength(1);

  await waitFor(() => load.committedOn(target) >= 20, "writes on the target", 60_000);
  await load.stop();
  expect(load.refusals()).toBeGreaterThan(0);
  const oldPrimary = await east.connect(database);
  const newPrimary = await west.connect(database);
  sessions.push(oldPrimary, newPrimary);
  await expectFailoverInvariants({ writers: load, tag: `${point}-`, oldAtFence: await snapshot(oldPrimary), oldPrimary, newPrimary, newKey: target });
  expect((await routing.get("tenant-123"))!).toMatchObject({ migrationId: id, writesBlocked: false, primary: { connectionId: WEST, database } });
  // The carrier's slot and publication are gone from the source.
  const slots = await oldPrimary.query("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()");
  expect(slots.rows).toEqual([]);
  await second.kill();
}, 300_000);
