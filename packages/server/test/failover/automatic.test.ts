// Automatic failover against a real server and real clusters: the source's
// cluster crashes (halt immediate) and the server fails the replication over
// by itself once source_unreachable_seconds have passed — trigger Automatic,
// forced (the loss window reported as for a forced manual failover), the
// routing switched, its events recorded — once only, a manual trigger
// meanwhile refused with 409. A replication without automatic failover on
// the same source is left alone; of two servers only the one running the
// replication counts down; a source that answers again within the window
// cancels the countdown; bad settings are refused with the field.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../src/testing/world";
import { Holds } from "./holds";
import { snapshot } from "./invariants";

let world: World;
const holds = new Holds();
const sessions: pg.Client[] = [];

beforeAll(async () => {
  world = await startWorld({ users: 100, app: { failover: { pause: holds.pause, probeTimeoutMs: 2_000 } } });
  await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)`, [
    JSON.stringify({ connectionId: EAST, database: "production_db", schema: "public", region: "us-east-1" }),
  ]);
}, 180_000);

afterAll(async () => {
  holds.releaseAll();
  for (const s of sessions) await s.end().catch(() => undefined);
  await world?.east.resume().catch(() => undefined);
  await world?.close();
}, 120_000);

const TABLES = ["users", "orders", "products"];

async function streaming(id: string): Promise<void> {
  expect((await world.rest("POST", `/replications/${id}/start`, {})).status).toBe(200);
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", `${id} to stream`, 60_000);
}

async function events(id: string, type: string): Promise<{ severity: string; message: string; details: Record<string, string>; created_at: Date }[]> {
  const { rows } = await world.pool.query("SELECT severity, message, details, created_at FROM events WHERE replication_id = $1 AND event_type = $2 ORDER BY id", [id, type]);
  return rows;
}

async function failoversOf(id: string): Promise<{ id: string; trigger: string; status: string }[]> {
  return (await world.rest("GET", `/failovers?replication_id=${id}`)).body.data;
}

test("bad automatic_failover settings are refused with the field (the §6 envelope)", async () => {
  await world.west.createDatabase("auto_refused");
  for (const seconds of [-1, 86_401]) {
    const res = await world.rest("POST", "/replications", {
      tenant_id: "tenant-123",
      source: { connection_id: EAST, database: "production_db" },
      target: { connection_id: WEST, database: "auto_refused" },
      config: { table_filter: ["users.*"], automatic_failover: { enabled: true, source_unreachable_seconds: seconds } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.code).toBe("VALIDATION_ERROR");
    expect(res.body.error.details.violations).toEqual([
      { field: "config.automatic_failover.source_unreachable_seconds", description: "must be from 0 (the default, 30) to 86400" },
    ]);
  }
});

test("a source that answers again within the window cancels the countdown: no failover", async () => {
  const id = await world.createReplication("auto_back", TABLES, { automatic_failover: { enabled: true, source_unreachable_seconds: 15 } });
  await streaming(id);
  await world.east.halt("immediate");
  try {
    await waitFor(async () => (await events(id, "AutomaticFailoverPending")).length === 1, "the countdown to start", 60_000);
  } finally {
    await world.east.resume();
  }
  const [pending] = await events(id, "AutomaticFailoverPending");
  expect(pending!.severity).toBe("Warning");
  expect(pending!.details.source_unreachable_seconds).toBe("15");
  await waitFor(async () => (await events(id, "AutomaticFailoverCancelled")).length === 1, "the countdown to be cancelled", 30_000);
  // Past the window the countdown would have ended in: still no failover, and the replication streams again.
  const deadline = new Date(pending!.details.source_unreachable_since!).getTime() + 15_000 + 3_000;
  await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())));
  expect(await failoversOf(id)).toEqual([]);
  expect(await events(id, "AutomaticFailoverPending")).toHaveLength(1);
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", "streaming again", 90_000);
  // Out of the way of the next test, which stops the source again.
  expect((await world.rest("DELETE", `/replications/${id}`)).status).toBe(204);
}, 240_000);

test("the source's cluster crashed: failed over by itself after the window (Automatic, forced, routing switched), once; automatic failover off: left alone", async () => {
  // A second server on the same control plane: only the one that runs the replication (holds its lease) counts down.
  await world.startServer();
  const id = await world.createReplication("auto_west", TABLES);
  const off = await world.createReplication("manual_west", TABLES);
  await streaming(id);
  await streaming(off);
  // Opted in while it runs (the replication above was created with it).
  const patched = await world.rest("PATCH", `/replications/${id}`, { config: { automatic_failover: { enabled: true, source_unreachable_seconds: 3 } } });
  expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  expect(patched.body.config.automatic_failover).toMatchObject({ enabled: true, source_unreachable_seconds: 3 });
  const refused = await world.rest("PATCH", `/replications/${id}`, { config: { automatic_failover: { enabled: true, source_unreachable_seconds: -5 } } });
  expect(refused.status).toBe(400);
  expect(refused.body.error.details.violations.map((v: { field: string }) => v.field)).toEqual(["config.automatic_failover.source_unreachable_seconds"]);
  // The world's own session died with the source's last crash (the test above).
  const source = await world.east.connect("production_db");
  sessions.push(source);
  await source.query("INSERT INTO users (name, email) SELECT 'before ' || i, 'b' || i || '@example.com' FROM generate_series(1, 50) i");
  const { rows } = await source.query<{ lsn: string }>("SELECT (pg_current_wal_lsn() - '0/0')::text AS lsn");
  const written = BigInt(rows[0]!.lsn);
  await waitFor(async () => BigInt((await world.rest("GET", `/replications/${id}`)).body.current_state?.last_checkpoint?.lsn ?? 0) >= written, "the replica to apply them", 60_000);
  const atHalt = await snapshot(source);

  const held = holds.hold("validated");
  const haltedAt = new Date();
  await world.east.halt("immediate");
  const failoverId = await held.reached;
  try {
    // Running: Automatic; a second failover (a manual one here) is refused, and the monitor starts none either.
    const running = (await world.rest("GET", `/failovers/${failoverId}`)).body;
    expect(running).toMatchObject({ id: failoverId, replication_id: id, trigger: "Automatic", status: "InProgress" });
    expect(running.reason).toMatch(/^automatic failover: the source has been unreachable since /);
    const second = await world.rest("POST", `/replications/${id}/failover`, { reason: "me too", force: true, update_routing: true });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: "CONFLICT", details: { replication_id: id, failover_id: failoverId } });
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await failoversOf(id)).map((f) => f.id)).toEqual([failoverId]);
  } finally {
    held.release();
  }
  let done: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  await waitFor(async () => (done = (await world.rest("GET", `/failovers/${failoverId}`)).body).status !== "InProgress", "the failover to end", 90_000);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.trigger).toBe("Automatic");
  expect(done.steps.map((s: { status: string }) => s.status)).toEqual(["Skipped", "Completed", "Completed", "Completed"]);
  expect(done.steps[0].message).toMatch(/^force: failed checks skipped: the replication is Error, not Streaming/);
  expect(done.steps[1].message).toMatch(/^the source is unreachable: the replication stopped at the last checkpoint the replica applied/);

  // The window was waited for: the countdown began after the crash, the failover at least 3 s later.
  const countdowns = await events(id, "AutomaticFailoverPending");
  expect(countdowns).toHaveLength(1);
  const [pending] = countdowns;
  const since = new Date(pending!.details.source_unreachable_since!);
  expect(since.getTime()).toBeGreaterThanOrEqual(haltedAt.getTime());
  expect(new Date(done.started_at).getTime() - since.getTime()).toBeGreaterThanOrEqual(3_000);
  // The loss window, as for a forced manual failover.
  const loss = done.possible_data_loss;
  expect(BigInt(loss.last_applied.lsn)).toBeGreaterThanOrEqual(written);
  const away = new Date(loss.source_unreachable_since);
  expect(away >= haltedAt && away <= new Date(done.started_at), `${away.toISOString()} after the crash, before the failover`).toBe(true);
  expect(Number(done.downtime_ms ?? 0)).toBe(0);

  // Evented like a manual one.
  const started = await events(id, "FailoverStarted");
  expect(started).toHaveLength(1);
  expect(started[0]!.details).toMatchObject({ failover_id: failoverId, trigger: "Automatic", force: "true", update_routing: "true", reverse_replication: "false" });
  expect(started[0]!.message).toMatch(new RegExp(`^failover ${failoverId} started automatically: automatic failover`));
  expect((await events(id, "FailoverStep")).length).toBeGreaterThanOrEqual(8);
  const completed = await events(id, "FailoverCompleted");
  expect(completed).toHaveLength(1);
  expect(completed[0]!.severity).toBe("Warning");
  expect(completed[0]!.details.last_applied_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

  // Routed to the new primary, which holds what was applied.
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body).toMatchObject({ primary: { connection_id: WEST, database: "auto_west" }, writes_blocked: false });
  const west = await world.west.connect("auto_west");
  sessions.push(west);
  expect(await snapshot(west)).toEqual(atHalt);

  // Once only; the list filter finds it, Automatic. The replication without automatic failover was left alone.
  await new Promise((r) => setTimeout(r, 5_000));
  expect(await failoversOf(id)).toEqual([expect.objectContaining({ id: failoverId, trigger: "Automatic", status: "Completed" })]);
  expect((await world.rest("GET", `/failovers?replication_id=${id}&status=Completed`)).body.data.map((f: { id: string }) => f.id)).toEqual([failoverId]);
  expect((await world.rest("GET", `/replications/${id}`)).body.status).toBe("Stopped");
  expect(await failoversOf(off)).toEqual([]);
  expect(await events(off, "AutomaticFailoverPending")).toEqual([]);
  expect((await world.rest("GET", `/replications/${off}`)).body.status).toBe("Error");
}, 300_000);
