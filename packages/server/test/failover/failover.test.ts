// Failover (spec §2.3) end to end against real PostgreSQL clusters, under a
// live write load from clients that follow the tenant's routing (several
// connections; inserts, updates and deletes; ids from sequences; a write
// refused with 25006 follows routing to the new primary and runs again):
// after the failover every acknowledged write is on the new primary, the old
// primary at its fence equals the new one, sequences go on without a
// collision and the old primary takes no write. Then, the reverse
// replication the failover started carries the new primary back to the old
// one, and failing over that one (fail back) holds the same invariant in the
// other direction — the old primary's fence lifted, the other one fenced.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../src/testing/world";
import { Holds } from "./holds";
import { expectFailoverInvariants, snapshot } from "./invariants";
import { startRoutedWriters, type RoutedWriters } from "./writers";

let world: World;
const holds = new Holds();
const sessions: pg.Client[] = [];
const running: RoutedWriters[] = [];
const STEPS = ["ValidateReplicaHealth", "StopReplication", "PromoteReplica", "UpdateRouting"];

beforeAll(async () => {
  world = await startWorld({ users: 200, app: { failover: { pause: holds.pause } } });
  await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)`, [
    JSON.stringify({ connectionId: EAST, database: "production_db", schema: "public", region: "us-east-1" }),
  ]);
}, 180_000);

afterAll(async () => {
  holds.releaseAll();
  for (const w of running) await w.stop().catch(() => undefined);
  for (const s of sessions) await s.end().catch(() => undefined);
  await world?.close();
}, 120_000);

const clusterOf = (connectionId: string) => (connectionId === EAST ? world.east : world.west);
async function session(primary: string): Promise<pg.Client> {
  const [connectionId, database] = primary.split("/") as [string, string];
  const client = await clusterOf(connectionId).connect(database);
  sessions.push(client);
  return client;
}

function writers(tag: string): RoutedWriters {
  const w = startRoutedWriters({
    writers: 4,
    tag,
    // GetTenantRouting over REST, as an application would read it.
    routing: async () => {
      const res = await world.rest("GET", "/tenants/tenant-123/routing");
      if (res.status !== 200) throw new Error(`routing: ${res.status} ${JSON.stringify(res.body)}`);
      const r = res.body;
      return { version: BigInt(r.version), primary: `${r.primary.connection_id}/${r.primary.database}`, writesBlocked: r.writes_blocked === true };
    },
    connect: (primary) => {
      const [connectionId, database] = primary.split("/") as [string, string];
      return clusterOf(connectionId).connect(database);
    },
  });
  running.push(w);
  return w;
}

async function failoverEnded(id: string) {
  let body: { status: string } | undefined;
  await waitFor(async () => {
    body = (await world.rest("GET", `/failovers/${id}`)).body;
    return body?.status !== "InProgress";
  }, `failover ${id} to end`, 120_000);
  return body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function streaming(id: string) {
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", `replication ${id} to stream`, 120_000);
}

test("under a write load that follows routing: nothing acknowledged is lost, the fence holds, sequences go on; then fail back through the reverse replication", async () => {
  const forward = await world.createReplication("failover_west", ["users", "orders", "products"]);
  expect((await world.rest("POST", `/replications/${forward}/start`, {})).status).toBe(200);
  await streaming(forward);
  const east = `${EAST}/production_db`;
  const west = `${WEST}/failover_west`;

  // 1. Fail over east → west while the tenant writes.
  const first = writers("fo1-");
  await waitFor(() => first.committedOn(east) >= 40, "writes on the old primary", 60_000);
  // The old primary as the fence leaves it, seen before the reverse replication rewrites it.
  const fenced = holds.hold("fenced");
  const switched = holds.hold("switched");
  const accepted = await world.rest("POST", `/replications/${forward}/failover`, { reason: "planned maintenance", update_routing: true, reverse_replication: true });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  expect(accepted.body).toMatchObject({ replication_id: forward, status: "InProgress" });
  expect(accepted.body.steps.map((s: { step: string }) => s.step)).toEqual(STEPS);
  expect(accepted.body.steps[0].status).not.toBe("Pending");
  const failover = accepted.body.failover_id as string;
  // Fenced: routing still names the old primary, blocks writes, and names the new one as next (announced before the fence).
  expect(await fenced.reached).toBe(failover);
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body).toMatchObject({
    primary: { connection_id: EAST, database: "production_db" },
    writes_blocked: true,
    next_primary: { connection_id: WEST, database: "failover_west", region: "us-west-2" },
    failover_id: failover,
  });
  fenced.release();
  expect(await switched.reached).toBe(failover);
  // Switched: the next primary is the primary, and there is no next any more.
  const routed = (await world.rest("GET", "/tenants/tenant-123/routing")).body;
  expect(routed).toMatchObject({ primary: { connection_id: WEST, database: "failover_west" }, writes_blocked: false });
  expect(routed.next_primary).toBeUndefined();
  const eastDb = await session(east);
  const westDb = await session(west);
  const eastAtFence = await snapshot(eastDb);
  switched.release();

  const done = await failoverEnded(failover);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.steps.map((s: { step: string; status: string }) => [s.step, s.status])).toEqual(STEPS.map((s) => [s, "Completed"]));
  expect(done).toMatchObject({
    id: failover,
    replication_id: forward,
    trigger: "Manual",
    reason: "planned maintenance",
    old_primary: { connection_id: EAST, database: "production_db", region: "us-east-1" },
    new_primary: { connection_id: WEST, database: "failover_west", region: "us-west-2" },
  });
  expect(Number(done.downtime_ms)).toBeGreaterThanOrEqual(0);
  expect(done.completed_at).toBeTruthy();
  expect(done.possible_data_loss).toBeUndefined();
  // Before the fence: the target checked and prepared; in the window only the fence, drain, a stop asked for and the positions.
  expect(done.steps[0].message).toMatch(/the new primary takes writes .*; before the fence: \d+ column default\(s\) set, \d+ sequence\(s\) made ready/);
  expect(done.steps[1].message).toMatch(/^fenced 3 tables .* the replication asked to stop \(its slot and publication are dropped after the switch\)/);
  expect(done.steps[2].message).toMatch(/sequence\(s\) synced at the fence/);
  expect(done.steps[2].message).not.toMatch(/checksums/);
  // After the switch: the verification against the new primary as the switch found it, then the replication ended.
  expect(done.steps[3].message).toMatch(/downtime \d+ ms.*; verified after the switch: the target as the switch found it equals the source at the fence: .*users \d+\/\d+ rows, checksums equal/);
  expect(done.steps[3].message).toMatch(/the replication ended, its slot and publication dropped; reverse replication /);
  const reverse = done.reverse_replication_id as string;
  expect(reverse).toMatch(/^[0-9a-f-]{36}$/);

  // The tenant's writers followed routing and keep writing on the new primary.
  await waitFor(() => first.committedOn(west) >= 40, "writes on the new primary", 60_000);
  await first.stop();
  expect(first.refusals()).toBeGreaterThan(0);
  const routing = (await world.rest("GET", "/tenants/tenant-123/routing")).body;
  expect(routing).toMatchObject({ primary: { connection_id: WEST, database: "failover_west" }, failover_id: failover, writes_blocked: false });
  await expectFailoverInvariants({ writers: first, tag: "fo1-", oldAtFence: eastAtFence, oldPrimary: eastDb, newPrimary: westDb, newKey: west });

  // The replication is stopped, its slot gone from the old primary; each step is in the event log, in order.
  expect((await world.rest("GET", `/replications/${forward}`)).body.status).toBe("Stopped");
  const slots = await eastDb.query("SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1", [`heliosdb_${forward.replace(/-/g, "")}`]);
  expect(slots.rowCount).toBe(0);
  const { rows: events } = await world.pool.query(
    "SELECT event_type, details->>'step' AS step, details->>'status' AS status FROM events WHERE details->>'failover_id' = $1 ORDER BY id",
    [failover],
  );
  expect(events.map((e) => [e.event_type, e.step, e.status])).toEqual([
    ["FailoverStarted", null, null],
    ...STEPS.flatMap((s) => [["FailoverStep", s, "InProgress"], ["FailoverStep", s, "Completed"]]),
    ["FailoverCompleted", null, null],
  ]);

  // 2. The reverse replication (west → east) runs into the fenced old primary, whose clients it does not let in.
  const back = (await world.rest("GET", `/replications/${reverse}`)).body;
  expect(back).toMatchObject({ tenant_id: "tenant-123", source: { connection_id: WEST, database: "failover_west" }, target: { connection_id: EAST, database: "production_db" } });
  await streaming(reverse);
  await expect(eastDb.query("INSERT INTO users (name, email) VALUES ('stale client', 's@example.com')")).rejects.toMatchObject({ code: "25006" });

  // 3. Fail back (west → east) under a new load, through the reverse replication.
  const second = writers("fo2-");
  await waitFor(() => second.committedOn(west) >= 40, "writes on west", 60_000);
  const again = await world.rest("POST", `/replications/${reverse}/failover`, { reason: "fail back", update_routing: true });
  expect(again.status, JSON.stringify(again.body)).toBe(202);
  const back2 = await failoverEnded(again.body.failover_id);
  expect(back2.status, JSON.stringify(back2)).toBe("Completed");
  expect(back2.steps[2].message).toMatch(/^lifted the fence an earlier failover left on public\.orders, public\.products, public\.users;/);
  expect(back2.reverse_replication_id ?? "").toBe("");
  // Only disabled inside the window; dropped after the switch.
  expect((await eastDb.query("SELECT 1 FROM pg_trigger WHERE tgname = 'heliosdb_fence'")).rowCount).toBe(0);
  await waitFor(() => second.committedOn(east) >= 40, "writes on east again", 60_000);
  await second.stop();
  expect(second.refusals()).toBeGreaterThan(0);
  // No reverse replication this time: west stays as its fence left it.
  await expectFailoverInvariants({ writers: second, tag: "fo2-", oldAtFence: await snapshot(westDb), oldPrimary: westDb, newPrimary: eastDb, newKey: east });
  // What the first writers left came back to east through the reverse replication, as they left it.
  const firstRows = await eastDb.query<{ id: string; name: string; email: string }>("SELECT id::text, name, email FROM users WHERE name LIKE 'fo1-%'");
  expect(new Map(firstRows.rows.map((u) => [u.id, u]))).toEqual(first.expected().users);

  // Both in the history, newest first; filtered by replication.
  const history = (await world.rest("GET", "/failovers?page_size=10")).body;
  expect(history.data.map((f: { id: string }) => f.id).slice(0, 2)).toEqual([again.body.failover_id, failover]);
  expect(history.pagination).toMatchObject({ page: 1, page_size: 10 });
  const ofForward = (await world.rest("GET", `/failovers?replication_id=${forward}`)).body;
  expect(ofForward.data.map((f: { id: string }) => f.id)).toEqual([failover]);
}, 400_000);

test("a failover whose replica differs from the source at the fence completes (the switch stands), says so loudly with severity Error, starts no reverse replication and keeps the old primary fenced; nothing acknowledged is lost", async () => {
  // The tenant is on east again (the fail back above).
  const east = `${EAST}/production_db`;
  const westKey = `${WEST}/rollback_west`;
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body.primary).toMatchObject({ connection_id: EAST, database: "production_db" });
  const id = await world.createReplication("rollback_west", ["users", "orders", "products"]);
  expect((await world.rest("POST", `/replications/${id}/start`, {})).status).toBe(200);
  await streaming(id);
  const load = writers("rb-");
  await waitFor(() => load.committedOn(east) >= 30, "writes on the primary", 60_000);
  // A row written into the replica by someone else: the replica is not the source.
  const westDb = await session(westKey);
  await westDb.query("INSERT INTO users (id, name, email, region, created_at) VALUES (999999, 'stray', 'stray@example.com', 'us', now())");

  const accepted = await world.rest("POST", `/replications/${id}/failover`, { reason: "differs", update_routing: true, reverse_replication: true });
  expect(accepted.status).toBe(202);
  const failover = accepted.body.failover_id as string;
  const done = await failoverEnded(failover);
  // The verification is made after the switch: the tenant's clients already write on the new primary, so nothing is undone.
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.steps.map((s: { status: string }) => s.status)).toEqual(["Completed", "Completed", "Completed", "Completed"]);
  expect(done.steps[3].message).toMatch(
    /VERIFICATION FAILED after the switch \(the switch stands: the tenant writes on the target\): the target differs from the source at the fence in users \(.*users (\d+)\/(?!\1)\d+ rows/,
  );
  expect(done.steps[3].message).toMatch(/no reverse replication: the new primary differs from the old one, which stays fenced as it was, for repair/);
  expect(done.reverse_replication_id ?? "").toBe("");
  expect(Number(done.downtime_ms)).toBeGreaterThanOrEqual(0);
  // Said loudly: the step's end and the failover's end are events of severity Error.
  const { rows: events } = await world.pool.query(
    "SELECT event_type, severity, message FROM events WHERE details->>'failover_id' = $1 AND (event_type = 'FailoverCompleted' OR details->>'status' = 'Completed') ORDER BY id",
    [failover],
  );
  expect(events.map((e) => [e.event_type, e.severity])).toEqual([
    ["FailoverStep", "Info"],
    ["FailoverStep", "Info"],
    ["FailoverStep", "Info"],
    ["FailoverStep", "Error"],
    ["FailoverCompleted", "Error"],
  ]);
  expect(events.at(-1)!.message).toMatch(/completed: the replica is the primary .*VERIFICATION FAILED/);

  // The writers followed routing to the new primary and write there.
  await waitFor(() => load.committedOn(westKey) >= 30, "writes on the new primary", 60_000);
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body).toMatchObject({ primary: { connection_id: WEST, database: "rollback_west" }, failover_id: failover, writes_blocked: false });
  await load.stop();
  expect(load.errors).toEqual([]);
  expect(load.refusals()).toBeGreaterThan(0);
  // The old primary stays fenced as the failover left it (for repair), and nothing replicates into it.
  const eastDb = await session(east);
  await expect(eastDb.query("INSERT INTO users (name, email) VALUES ('stale client', 's@example.com')")).rejects.toMatchObject({ code: "25006" });
  expect((await world.rest("GET", `/replications/${id}`)).body.status).toBe("Stopped");
  // Every acknowledged write is on the new primary, as the last one left it (the stray row beside them).
  const users = await westDb.query("SELECT id::text, name, email FROM users WHERE name LIKE 'rb-%'");
  expect(new Map(users.rows.map((u) => [u.id, u]))).toEqual(load.expected().users);
  expect((await westDb.query("SELECT 1 FROM users WHERE id = 999999")).rowCount).toBe(1);
}, 400_000);
