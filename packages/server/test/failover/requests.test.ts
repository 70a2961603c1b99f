// Every request a failover refuses, over REST against a real server and real
// clusters, with its documented status and code (docs/failover.md, "What is
// refused"): before anything runs (a malformed or unknown id, another
// tenant's replication exactly as a missing one, a permission missing, a
// replication that never ran, a reason too long, a reverse replication of a
// replica that does not hold the tenant's data, routing that names another
// primary, lag past max_lag_seconds); while a failover runs (a second
// failover, DELETE, PATCH, start, pause, stop); refused by
// ValidateReplicaHealth (a replica whose PII is hashed) and what `force`
// does then; GetFailoverStatus and ListFailoverHistory's refusals, tenant
// isolation, filters and paging. Each test has a tenant database of its own
// on the source cluster: a completed failover leaves its source fenced.
import { seedTenant, waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { Holds } from "./holds";

let world: World;
const holds = new Holds();
let tokens: { other: string; viewer: string; operator: string };

beforeAll(async () => {
  world = await startWorld({ users: 10, app: { failover: { pause: holds.pause } } });
  const key = loadSigningKey(world.dataDir);
  tokens = {
    other: await issueToken(key, { roles: ["Admin"], tenantId: "tenant-456", subject: "other-tenant" }),
    viewer: await issueToken(key, { roles: ["Viewer"], tenantId: "tenant-123", subject: "viewer" }),
    operator: await issueToken(key, { roles: ["Operator"], tenantId: "tenant-123", subject: "operator" }),
  };
}, 180_000);

afterAll(async () => {
  holds.releaseAll();
  await world?.close();
}, 120_000);

async function call(token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${world.app.urls.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const rest = (method: string, path: string, body?: unknown) => world.rest(method, path, body);

/** A refusal's status and §6 code. */
const refused = (res: { status: number; body: { error?: { code?: string } } }) => [res.status, res.body?.error?.code];

/** A tenant database of its own on the source, and a replication of it into one on the target; started unless asked not to. */
async function replication(name: string, config: Record<string, unknown> = {}, start = true): Promise<string> {
  await world.east.createDatabase(`${name}_src`);
  const db = await world.east.connect(`${name}_src`);
  await seedTenant(db, 30).finally(() => db.end());
  await world.west.createDatabase(`${name}_dst`);
  const res = await rest("POST", "/replications", {
    tenant_id: "tenant-123",
    source: { connection_id: EAST, database: `${name}_src` },
    target: { connection_id: WEST, database: `${name}_dst` },
    config: { qos_tier: "Premium", table_filter: ["users.*", "orders.*"], ...config },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  if (start) {
    expect((await rest("POST", `/replications/${res.body.id}/start`, {})).status).toBe(200);
    await waitFor(async () => (await rest("GET", `/replications/${res.body.id}`)).body.status === "Streaming", "streaming", 60_000);
  }
  return res.body.id;
}

async function ended(id: string) {
  let body: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  await waitFor(async () => (body = (await rest("GET", `/failovers/${id}`)).body).status !== "InProgress", `failover ${id} to end`, 60_000);
  return body;
}

test("refused before anything runs: each with its status and code", async () => {
  const id = await replication("refusals");
  const missing = "650e8400-e29b-41d4-a716-446655449999";
  const failover = (body: object, token?: string, replicationId = id) =>
    token ? call(token, "POST", `/replications/${replicationId}/failover`, body) : rest("POST", `/replications/${replicationId}/failover`, body);

  expect(refused(await failover({}, undefined, "not-a-uuid"))).toEqual([400, "INVALID_REQUEST"]);
  const absent = await failover({}, undefined, missing);
  expect(refused(absent)).toEqual([404, "NOT_FOUND"]);
  // Another tenant's replication answers exactly as one that does not exist.
  const foreign = await call(tokens.other, "POST", `/replications/${id}/failover`, {});
  expect(refused(foreign)).toEqual([404, "NOT_FOUND"]);
  expect(foreign.body.error.message).toBe(absent.body.error.message.replace(missing, id));
  expect(foreign.body.error.details).toEqual({ replication_id: id });
  // failover:trigger is not a Viewer's.
  expect(refused(await call(tokens.viewer, "POST", `/replications/${id}/failover`, {}))).toEqual([403, "FORBIDDEN"]);
  expect(refused(await failover({ reason: "x".repeat(1001) }))).toEqual([400, "VALIDATION_ERROR"]);

  // Never started: nothing to promote.
  const idle = await replication("never_started", {}, false);
  const never = await failover({}, undefined, idle);
  expect(refused(never)).toEqual([409, "CONFLICT"]);
  expect(never.body.error.message).toMatch(/has never run/);

  // A reverse replication of a replica whose PII is hashed would copy HMACs over the old primary's data.
  const hashed = await replication("hashed_reverse", { transforms: [{ type: "AnonymizePII", config: { columns: ["email"], method: "Hash" } }] });
  const reverse = await failover({ reverse_replication: true }, undefined, hashed);
  expect(refused(reverse)).toEqual([400, "VALIDATION_ERROR"]);
  expect(reverse.body.error.details.violations[0]).toMatchObject({ field: "reverse_replication" });
  expect(reverse.body.error.details.violations[0].description).toMatch(/hashed/);

  // Routing that names another primary than the replication's source: update_routing would move clients off an unfenced database.
  await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1) ON CONFLICT (tenant_id) DO UPDATE SET "primary" = EXCLUDED."primary"`, [
    JSON.stringify({ connectionId: EAST, database: "somewhere_else", schema: "public", region: "us-east-1" }),
  ]);
  try {
    const elsewhere = await failover({ update_routing: true });
    expect(refused(elsewhere)).toEqual([409, "CONFLICT"]);
    expect(elsewhere.body.error.details).toMatchObject({ replication_id: id, routing_primary_database: "somewhere_else" });
  } finally {
    await world.pool.query("DELETE FROM routing WHERE tenant_id = 'tenant-123'");
  }

  // Lag past max_lag_seconds (the spec's own example of §6.1): paused, the source writes on, the lag grows.
  const lagging = await replication("lagging", { max_lag_seconds: 1 });
  expect((await rest("POST", `/replications/${lagging}/pause`)).status).toBe(200);
  const src = await world.east.connect("lagging_src");
  await src.query("INSERT INTO users (name, email) VALUES ('while paused', 'p@example.com')").finally(() => src.end());
  await waitFor(async () => Number((await rest("GET", `/replications/${lagging}`)).body.current_state?.replication_lag_seconds ?? 0) > 1, "lag past 1 s", 60_000);
  const lag = await failover({}, undefined, lagging);
  expect(refused(lag)).toEqual([422, "REPLICATION_LAG_EXCEEDED"]);
  expect(lag.body.error.message).toBe("Replication lag exceeded maximum threshold");
  expect(lag.body.error.details).toMatchObject({ replication_id: lagging, max_lag_seconds: 1 });
  expect(lag.body.error.details.current_lag_seconds).toBeGreaterThan(1);

  // Nothing was created by any of them.
  expect((await rest("GET", "/failovers?page_size=100")).body.data).toEqual([]);
}, 240_000);

test("while a failover runs: a second failover 409, DELETE 409, PATCH, start, pause and stop 422 FAILOVER_IN_PROGRESS; afterwards the replication is Stopped", async () => {
  const id = await replication("running");
  const fenced = holds.hold("fenced");
  const accepted = await call(tokens.operator, "POST", `/replications/${id}/failover`, { reason: "held" });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  const failover = accepted.body.failover_id as string;
  expect(await fenced.reached).toBe(failover);
  try {
    const details = { replication_id: id, failover_id: failover };
    const second = await rest("POST", `/replications/${id}/failover`, {});
    expect(refused(second)).toEqual([409, "CONFLICT"]);
    expect(second.body.error.details).toEqual(details);
    const del = await rest("DELETE", `/replications/${id}`);
    expect(refused(del)).toEqual([409, "CONFLICT"]);
    expect(del.body.error.details).toEqual(details);
    for (const [method, path, body] of [
      ["PATCH", `/replications/${id}`, { config: { qos_tier: "Standard" } }],
      ["POST", `/replications/${id}/start`, {}],
      ["POST", `/replications/${id}/pause`, undefined],
      ["POST", `/replications/${id}/stop`, undefined],
    ] as const) {
      const res = await rest(method, path, body);
      expect(refused(res), `${method} ${path}`).toEqual([422, "FAILOVER_IN_PROGRESS"]);
      expect(res.body.error.details).toEqual(details);
    }
    // Seen while it runs: InProgress, the steps as far as they went.
    const running = (await rest("GET", `/failovers/${failover}`)).body;
    expect(running.status).toBe("InProgress");
    expect(running.steps.map((s: { status: string }) => s.status)).toEqual(["Completed", "InProgress", "Pending", "Pending"]);
    expect((await rest("GET", `/failovers?status=InProgress&replication_id=${id}`)).body.data.map((f: { id: string }) => f.id)).toEqual([failover]);
  } finally {
    fenced.release();
  }
  const done = await ended(failover);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  // update_routing was not asked for: the step is Skipped, no downtime is measured.
  expect(done.steps[3]).toMatchObject({ step: "UpdateRouting", status: "Skipped" });
  expect(done.steps[3].message).toMatch(/^update_routing was not asked for/);
  expect(Number(done.downtime_ms ?? 0)).toBe(0);
  expect((await rest("GET", `/replications/${id}`)).body.status).toBe("Stopped");
  expect(refused(await rest("POST", `/replications/${id}/failover`, {}))).toEqual([409, "CONFLICT"]);
  // Deletable once the failover ended.
  expect((await rest("DELETE", `/replications/${id}`)).status).toBe(204);
}, 240_000);

test("ValidateReplicaHealth refuses a replica whose PII is hashed (the promoted data would not be the tenant's), changing nothing; with force it is skipped, saying why", async () => {
  const id = await replication("hashed", { transforms: [{ type: "AnonymizePII", config: { columns: ["email"], method: "Hash" } }] });
  const accepted = await rest("POST", `/replications/${id}/failover`, { reason: "no force" });
  expect(accepted.status).toBe(202);
  const refusedBy = await ended(accepted.body.failover_id);
  expect(refusedBy.status).toBe("RolledBack");
  expect(refusedBy.steps.map((s: { status: string }) => s.status)).toEqual(["Failed", "Pending", "Pending", "Pending"]);
  expect(refusedBy.steps[0].message).toMatch(/email hashed .* the promoted data would not be the tenant's data/);
  expect(refusedBy.message).toMatch(/^ValidateReplicaHealth: the replica is not fit to be promoted/);
  // Nothing changed: the replication streams on, its source takes writes.
  expect((await rest("GET", `/replications/${id}`)).body.status).toBe("Streaming");
  const src = await world.east.connect("hashed_src");
  await src.query("INSERT INTO users (name, email) VALUES ('still the primary', 's@example.com')").finally(() => src.end());

  const forced = await rest("POST", `/replications/${id}/failover`, { reason: "forced", force: true });
  expect(forced.status).toBe(202);
  const done = await ended(forced.body.failover_id);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.steps[0]).toMatchObject({ step: "ValidateReplicaHealth", status: "Skipped" });
  expect(done.steps[0].message).toMatch(/^force: failed checks skipped: the replica does not hold the tenant's data .*email hashed/);
  // Counted, not checksummed (after the promotion, in UpdateRouting — here Skipped, no routing asked for): a hashed column differs by design; noted.
  expect(done.steps[3].message).toMatch(/^update_routing was not asked for.*; verified after the switch: .*users \d+\/\d+ rows, count only/);
  expect(done.steps[2].message).toMatch(/note — AnonymizePII: email hashed/);
  // The failover and the refused one, newest first; filtered by status.
  const history = (await rest("GET", `/failovers?replication_id=${id}`)).body;
  expect(history.data.map((f: { id: string; status: string }) => [f.id, f.status])).toEqual([
    [forced.body.failover_id, "Completed"],
    [accepted.body.failover_id, "RolledBack"],
  ]);
  expect((await rest("GET", `/failovers?replication_id=${id}&status=RolledBack`)).body.data.map((f: { id: string }) => f.id)).toEqual([accepted.body.failover_id]);
}, 240_000);

test("GetFailoverStatus and ListFailoverHistory: refusals, another tenant's failover as a missing one, paging newest first", async () => {
  const { rows } = await world.pool.query<{ id: string }>("SELECT id FROM failovers ORDER BY created_at DESC, id");
  expect(rows.length).toBeGreaterThanOrEqual(3);
  const [newest] = rows;
  const missing = "750e8400-e29b-41d4-a716-446655449999";
  expect(refused(await rest("GET", "/failovers/not-a-uuid"))).toEqual([400, "INVALID_REQUEST"]);
  const absent = await rest("GET", `/failovers/${missing}`);
  expect(refused(absent)).toEqual([404, "NOT_FOUND"]);
  const foreign = await call(tokens.other, "GET", `/failovers/${newest!.id}`);
  expect(refused(foreign)).toEqual([404, "NOT_FOUND"]);
  expect(foreign.body.error.message).toBe(absent.body.error.message.replace(missing, newest!.id));
  expect(foreign.body.error.details).toEqual({ failover_id: newest!.id });
  // Another tenant's list is empty; a viewer of the tenant reads its failovers.
  expect((await call(tokens.other, "GET", "/failovers")).body).toMatchObject({ data: [], pagination: { total_items: 0 } });
  expect((await call(tokens.viewer, "GET", "/failovers")).body.pagination.total_items).toBe(rows.length);
  for (const query of ["status=Done", "replication_id=nope", "page_size=101", "page=-1"]) {
    expect(refused(await rest("GET", `/failovers?${query}`)), query).toEqual([400, "INVALID_REQUEST"]);
  }
  // Page by page, newest first, every failover once.
  const seen: string[] = [];
  for (let page = 1; ; page++) {
    const res = (await rest("GET", `/failovers?page_size=2&page=${page}`)).body;
    expect(res.pagination).toMatchObject({ page, page_size: 2, total_items: rows.length, total_pages: Math.ceil(rows.length / 2) });
    seen.push(...res.data.map((f: { id: string }) => f.id));
    if (page >= res.pagination.total_pages) break;
  }
  expect(seen).toEqual(rows.map((r) => r.id));
}, 60_000);
