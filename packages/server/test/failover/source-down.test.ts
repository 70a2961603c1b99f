// Failover with the source's cluster stopped, against a real server: without
// `force` ValidateReplicaHealth refuses it (the replication is in Error, its
// source unreachable) and nothing changes; with `force` the replica is
// promoted at the last checkpoint it applied, the failover reports that
// position and since when the source has been away (the loss window), and
// says what it could not do (fence, drain, sequences, defaults). Once the
// source is back its slot is still there, and deleting the replication
// drops it.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../src/testing/world";
import { snapshot } from "./invariants";

let world: World;
const sessions: pg.Client[] = [];

beforeAll(async () => {
  world = await startWorld({ users: 100 });
  await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)`, [
    JSON.stringify({ connectionId: EAST, database: "production_db", schema: "public", region: "us-east-1" }),
  ]);
}, 180_000);

afterAll(async () => {
  for (const s of sessions) await s.end().catch(() => undefined);
  await world?.east.resume().catch(() => undefined);
  await world?.close();
}, 120_000);

async function ended(id: string) {
  let body: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  await waitFor(async () => (body = (await world.rest("GET", `/failovers/${id}`)).body).status !== "InProgress", `failover ${id} to end`, 90_000);
  return body;
}

test("the source's cluster stopped: refused without force; with force, promoted at the last applied checkpoint, the loss window reported", async () => {
  const id = await world.createReplication("down_west", ["users", "orders", "products"]);
  expect((await world.rest("POST", `/replications/${id}/start`, {})).status).toBe(200);
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", "streaming", 60_000);
  // Writes, all applied before the source goes away.
  await world.source.query("INSERT INTO users (name, email) SELECT 'before ' || i, 'b' || i || '@example.com' FROM generate_series(1, 50) i");
  await world.source.query("UPDATE orders SET status = 'paid' WHERE id % 3 = 0");
  const { rows } = await world.source.query<{ lsn: string }>("SELECT (pg_current_wal_lsn() - '0/0')::text AS lsn");
  const written = BigInt(rows[0]!.lsn);
  await waitFor(async () => BigInt((await world.rest("GET", `/replications/${id}`)).body.current_state?.last_checkpoint?.lsn ?? 0) >= written, "the replica to apply them", 60_000);
  const atHalt = await snapshot(world.source);

  const haltedAt = new Date();
  // A crash (a fast shutdown waits for the replication's walsender to be told everything was flushed, which it never is).
  await world.east.halt("immediate");
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Error", "the replication to fail on its source", 60_000);

  // Without force: refused by ValidateReplicaHealth; nothing changed.
  const plain = await world.rest("POST", `/replications/${id}/failover`, { reason: "region down", update_routing: true });
  expect(plain.status, JSON.stringify(plain.body)).toBe(202);
  const refused = await ended(plain.body.failover_id);
  expect(refused.status).toBe("RolledBack");
  expect(refused.steps.map((s: { status: string }) => s.status)).toEqual(["Failed", "Pending", "Pending", "Pending"]);
  expect(refused.steps[0].message).toMatch(/the replication is Error, not Streaming \(source: .*\).* Trigger with force/);
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body.primary).toMatchObject({ connection_id: EAST });

  // With force: promoted where the replica is.
  const startedAt = new Date();
  const forced = await world.rest("POST", `/replications/${id}/failover`, { reason: "region down", update_routing: true, force: true, reverse_replication: true });
  expect(forced.status).toBe(202);
  const done = await ended(forced.body.failover_id);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.steps.map((s: { status: string }) => s.status)).toEqual(["Skipped", "Completed", "Completed", "Completed"]);
  expect(done.steps[0].message).toMatch(/^force: failed checks skipped: the replication is Error, not Streaming/);
  expect(done.steps[1].message).toMatch(/^the source is unreachable: the replication stopped at the last checkpoint the replica applied, LSN [0-9A-F]+\/[0-9A-F]+ .* may be lost/);
  expect(done.steps[2].message).toMatch(/the source is unreachable: no sequence position nor column default could be read from it/);
  expect(done.steps[3].message).toMatch(/names the new primary.*no write was blocked by this failover.*no downtime measured; no reverse replication: the old primary was unreachable/);
  // The loss window: the replica had applied everything written before the halt; the source was away since then.
  const loss = done.possible_data_loss;
  expect(BigInt(loss.last_applied.lsn)).toBeGreaterThanOrEqual(written);
  expect(Number(loss.last_applied.transaction_id)).toBeGreaterThan(0);
  const since = new Date(loss.source_unreachable_since);
  expect(since >= haltedAt && since <= startedAt, `${since.toISOString()} between ${haltedAt.toISOString()} and ${startedAt.toISOString()}`).toBe(true);
  expect(Number(done.downtime_ms ?? 0)).toBe(0);
  expect(done.reverse_replication_id ?? "").toBe("");
  const { rows: completed } = await world.pool.query("SELECT severity, details FROM events WHERE event_type = 'FailoverCompleted' AND details->>'failover_id' = $1", [done.id]);
  expect(completed).toHaveLength(1);
  expect(completed[0].severity).toBe("Warning");
  expect(completed[0].details.last_applied_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

  // The routing names the new primary, which holds everything applied and takes writes (naming the ids: no sequence could be copied).
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body).toMatchObject({ primary: { connection_id: WEST, database: "down_west" }, writes_blocked: false });
  const west = await world.west.connect("down_west");
  sessions.push(west);
  expect(await snapshot(west)).toEqual(atHalt);
  await west.query("INSERT INTO users (id, name, email, region, created_at) VALUES (1000000, 'after', 'a@example.com', 'us', now())");

  // The source back: not fenced (it was away), its slot still there; deleting the replication drops it.
  await world.east.resume();
  const east = await world.east.connect("production_db");
  sessions.push(east);
  const slot = `heliosdb_${id.replace(/-/g, "")}`;
  expect((await east.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slot])).rowCount).toBe(1);
  expect((await east.query("SELECT 1 FROM pg_trigger WHERE tgname = 'heliosdb_fence'")).rowCount).toBe(0);
  expect((await world.rest("DELETE", `/replications/${id}`)).status).toBe(204);
  expect((await east.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slot])).rowCount).toBe(0);
}, 300_000);
