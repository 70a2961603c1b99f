// Every request MigrationService refuses, with its documented status and §6
// code (docs/migration.md, "What is refused"): bad fields, a source that is
// not the tenant's primary in source_region, no target (or several) in
// target_region, a target that already holds the tenant's tables, a second
// migration of the tenant, one while a failover of the tenant runs, a token
// of another tenant or without the permission; GetMigrationStatus,
// ListMigrations, CancelMigration and CutoverMigration refusals, tenant
// isolation, filters and paging.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { MigrationPausePoint } from "../../src/controller/migration/deps";
import { EAST, startWorld, WEST, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { Holds } from "../failover/holds";
import { type Body, migrationEnded, routeToEast } from "./tenant";

let world: World;
const holds = new Holds<MigrationPausePoint>();
let tokens: { other: string; viewer: string; operator: string };

beforeAll(async () => {
  world = await startWorld({ users: 10, app: { migration: { pause: holds.pause } } });
  const key = loadSigningKey(world.dataDir);
  tokens = {
    other: await issueToken(key, { roles: ["Admin"], tenantId: "tenant-456", subject: "other-tenant" }),
    viewer: await issueToken(key, { roles: ["Viewer"], tenantId: "tenant-123", subject: "viewer" }),
    operator: await issueToken(key, { roles: ["Operator"], tenantId: "tenant-123", subject: "operator" }),
  };
  await world.west.createDatabase("req_west");
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
const refused = (res: { status: number; body: Body }) => [res.status, res.body?.error?.code];
const request = (extra: Body = {}) => ({ tenant_id: "tenant-123", source_region: "us-east-1", target_region: "us-west-2", target_database: "req_west", ...extra });

test("StartMigration: bad fields, no routing, a source not in source_region, no target or several, a missing database, tables already on the target, another tenant's token, no permission", async () => {
  // A field the contract marks UUID4 is checked before anything else (transport/input.ts).
  expect(refused(await rest("POST", "/migrations", request({ target_connection_id: "nope" })))).toEqual([400, "INVALID_REQUEST"]);
  // Fields, every problem at once.
  const bad = await rest("POST", "/migrations", {
    source_region: "us-east-1",
    target_region: "us-east-1",
    migration_config: { bulk_copy_parallelism: 65, cdc_lag_threshold_seconds: -1, cutover_strategy: "Eventually" },
  });
  expect(refused(bad)).toEqual([400, "VALIDATION_ERROR"]);
  expect(bad.body.error.details.violations.map((v: Body) => v.field).sort()).toEqual([
    "migration_config.bulk_copy_parallelism",
    "migration_config.cdc_lag_threshold_seconds",
    "migration_config.cutover_strategy",
    "target_region",
    "tenant_id",
  ]);
  expect(bad.body.error.request_id).toBeTruthy();

  // No routing: the primary is not known.
  const unrouted = await rest("POST", "/migrations", request());
  expect(refused(unrouted)).toEqual([400, "VALIDATION_ERROR"]);
  expect(unrouted.body.error.message).toMatch(/tenant tenant-123 has no routing/);
  await routeToEast(world);

  // The primary is in us-east-1.
  const elsewhere = await rest("POST", "/migrations", request({ source_region: "eu-central-1", target_region: "us-west-2" }));
  expect(refused(elsewhere)).toEqual([400, "VALIDATION_ERROR"]);
  expect(elsewhere.body.error.message).toBe("source_region: tenant tenant-123's primary is in region us-east-1, not eu-central-1");

  // No connection in the region; one named that is not the tenant's, or in another region.
  const nowhere = await rest("POST", "/migrations", request({ target_region: "ap-south-1" }));
  expect(refused(nowhere)).toEqual([400, "VALIDATION_ERROR"]);
  expect(nowhere.body.error.message).toBe("target_region: no registered connection in region ap-south-1 that tenant tenant-123 may use");
  const unknown = await rest("POST", "/migrations", request({ target_connection_id: randomUUID() }));
  expect(refused(unknown)).toEqual([400, "VALIDATION_ERROR"]);
  expect(unknown.body.error.message).toMatch(/^target_connection_id: no connection .* that tenant tenant-123 may use$/);
  const wrongRegion = await rest("POST", "/migrations", request({ target_connection_id: EAST }));
  expect(refused(wrongRegion)).toEqual([400, "VALIDATION_ERROR"]);
  expect(wrongRegion.body.error.message).toBe(`target_connection_id: connection ${EAST} is in region us-east-1, not target_region us-west-2`);

  // A target database that does not exist.
  const missingDb = await rest("POST", "/migrations", request({ target_database: "no_such_db" }));
  expect(refused(missingDb)).toEqual([400, "VALIDATION_ERROR"]);
  expect(missingDb.body.error.message).toMatch(/no database "no_such_db" on the target's server/);

  // A target that already holds the tenant's tables: the copy would replace them.
  await world.west.createDatabase("req_taken");
  const taken = await world.west.connect("req_taken");
  await taken.query("CREATE TABLE users (id bigint PRIMARY KEY, name text)");
  await taken.end();
  const occupied = await rest("POST", "/migrations", request({ target_database: "req_taken" }));
  expect(refused(occupied)).toEqual([409, "CONFLICT"]);
  expect(occupied.body.error.message).toMatch(/already holds tables of the tenant \(users\): the migration would replace them/);

  // Another tenant's token, a viewer: refused before anything.
  expect(refused(await call(tokens.other, "POST", "/migrations", request()))).toEqual([403, "FORBIDDEN"]);
  expect(refused(await call(tokens.viewer, "POST", "/migrations", request()))).toEqual([403, "FORBIDDEN"]);

  // Two connections in the region: name one.
  const second = await rest("POST", "/connections", {
    host: world.west.host, port: world.west.port, user: world.west.user, password: world.west.password,
    database: "req_west", sslmode: "disable", region: "us-west-2", owner_tenant_id: "tenant-123",
  });
  expect(second.status, JSON.stringify(second.body)).toBe(201);
  const several = await rest("POST", "/migrations", request());
  expect(refused(several)).toEqual([400, "VALIDATION_ERROR"]);
  expect(several.body.error.message).toMatch(/^target_connection_id: 2 connections in region us-west-2 that tenant tenant-123 may use \(.*\): name one with target_connection_id$/);
  expect((await rest("DELETE", `/connections/${second.body.connection_id ?? second.body.id}`)).status).toBeLessThan(300);
}, 120_000);

test("one migration of a tenant at a time, none while a failover of it runs; Cutover and Cancel refusals; an operator of the tenant may start one", async () => {
  const copying = holds.hold("copying");
  const first = await call(tokens.operator, "POST", "/migrations", request({ target_connection_id: WEST, migration_config: { cutover_strategy: "Manual" } }));
  expect(first.status, JSON.stringify(first.body)).toBe(202);
  const id = first.body.id as string;
  expect(await copying.reached).toBe(id);
  const second = await rest("POST", "/migrations", request());
  expect(refused(second)).toEqual([409, "CONFLICT"]);
  expect(second.body.error.details).toEqual({ tenant_id: "tenant-123", migration_id: id });
  // A Manual migration's cutover is asked for in CDCCatchup only; an Automatic one never.
  const early = await rest("POST", `/migrations/${id}/cutover`);
  expect(refused(early)).toEqual([409, "CONFLICT"]);
  expect(early.body.error.message).toBe("a cutover can be asked for in the CDCCatchup phase only; the migration is in BulkCopy");
  // Another tenant: the migration does not exist; a viewer may read, not cancel.
  for (const [method, path] of [["GET", `/migrations/${id}`], ["POST", `/migrations/${id}/cancel`], ["POST", `/migrations/${id}/cutover`]] as const) {
    expect(refused(await call(tokens.other, method, path)), path).toEqual([404, "NOT_FOUND"]);
  }
  expect((await call(tokens.viewer, "GET", `/migrations/${id}`)).status).toBe(200);
  expect(refused(await call(tokens.viewer, "POST", `/migrations/${id}/cancel`))).toEqual([403, "FORBIDDEN"]);
  expect(refused(await call(tokens.viewer, "POST", `/migrations/${id}/cutover`))).toEqual([403, "FORBIDDEN"]);
  // The carrier replication is the migration's while it runs.
  const carrier = (await world.pool.query("SELECT replication_id FROM migrations WHERE id = $1", [id])).rows[0].replication_id as string;
  const paused = await rest("POST", `/replications/${carrier}/pause`);
  expect(refused(paused)).toEqual([409, "CONFLICT"]);
  expect(paused.body.error.details).toEqual({ replication_id: carrier, migration_id: id });
  // Nor is a replication of the tenant failed over while its migration runs (the carrier included).
  const failover = await rest("POST", `/replications/${carrier}/failover`, { reason: "no", update_routing: true });
  expect(refused(failover)).toEqual([409, "CONFLICT"]);
  expect(failover.body.error.details).toEqual({ replication_id: carrier, migration_id: id });
  expect((await rest("POST", `/migrations/${id}/cancel`)).status).toBe(200);
  copying.release();
  expect((await migrationEnded(world, id)).status).toBe("Cancelled");
  // Ended: nothing to cancel, no cutover.
  expect(refused(await rest("POST", `/migrations/${id}/cutover`))).toEqual([409, "CONFLICT"]);

  // A failover of the tenant's replication in progress (held by another server's lease): refused.
  const failoverId = randomUUID();
  await world.pool.query(
    `INSERT INTO jobs (id, kind, steps, status, lease_owner, lease_expires_at) VALUES ($1, 'failover', '[]', 'InProgress', 'elsewhere', now() + interval '1 hour')`,
    [failoverId],
  );
  await world.pool.query(`INSERT INTO failovers (id, replication_id, tenant_id, trigger) VALUES ($1, $2, 'tenant-123', 'Manual')`, [failoverId, randomUUID()]);
  try {
    const during = await rest("POST", "/migrations", request());
    expect(refused(during)).toEqual([409, "CONFLICT"]);
    expect(during.body.error.details).toMatchObject({ tenant_id: "tenant-123", failover_id: failoverId });
  } finally {
    await world.pool.query("DELETE FROM jobs WHERE id = $1", [failoverId]);
  }
  // An Automatic migration refuses a cutover request.
  const auto = await rest("POST", "/migrations", request());
  expect(auto.status, JSON.stringify(auto.body)).toBe(202);
  const never = await rest("POST", `/migrations/${auto.body.id}/cutover`);
  expect(refused(never)).toEqual([409, "CONFLICT"]);
  expect(never.body.error.message).toBe("the migration's cutover_strategy is Automatic: it cuts over by itself");
  expect((await migrationEnded(world, auto.body.id)).status).toBe("Completed");
}, 180_000);

test("GetMigrationStatus, ListMigrations, CancelMigration: refusals, another tenant's as a missing one, filters, paging newest first", async () => {
  const { rows } = await world.pool.query<{ id: string }>("SELECT id FROM migrations ORDER BY created_at DESC, id");
  expect(rows.length).toBe(2);
  const missing = "750e8400-e29b-41d4-a716-446655449999";
  for (const path of ["/migrations/not-a-uuid", "/migrations/not-a-uuid/cancel", "/migrations/not-a-uuid/cutover"]) {
    expect(refused(await rest(path.endsWith("uuid") ? "GET" : "POST", path)), path).toEqual([400, "INVALID_REQUEST"]);
  }
  const absent = await rest("GET", `/migrations/${missing}`);
  expect(refused(absent)).toEqual([404, "NOT_FOUND"]);
  expect(refused(await rest("POST", `/migrations/${missing}/cancel`))).toEqual([404, "NOT_FOUND"]);
  const foreign = await call(tokens.other, "GET", `/migrations/${rows[0]!.id}`);
  expect(foreign.body.error.message).toBe(absent.body.error.message.replace(missing, rows[0]!.id));
  expect((await call(tokens.other, "GET", "/migrations")).body).toMatchObject({ data: [], pagination: { total_items: 0 } });
  expect((await call(tokens.other, "GET", "/migrations?tenant_id=tenant-123")).body).toMatchObject({ data: [], pagination: { total_items: 0 } });
  expect((await call(tokens.viewer, "GET", "/migrations")).body.pagination.total_items).toBe(2);
  for (const query of ["status=Done", "page_size=101", "page=-1"]) {
    expect(refused(await rest("GET", `/migrations?${query}`)), query).toEqual([400, "INVALID_REQUEST"]);
  }
  expect((await rest("GET", "/migrations?status=Cancelled")).body.data.map((m: Body) => m.status)).toEqual(["Cancelled"]);
  expect((await rest("GET", "/migrations?status=Completed")).body.data.map((m: Body) => m.status)).toEqual(["Completed"]);
  expect((await rest("GET", "/migrations?tenant_id=tenant-456")).body.data).toEqual([]);
  const seen: string[] = [];
  for (let page = 1; ; page++) {
    const res = (await rest("GET", `/migrations?tenant_id=tenant-123&page_size=1&page=${page}`)).body;
    expect(res.pagination).toMatchObject({ page, page_size: 1, total_items: 2, total_pages: 2 });
    seen.push(...res.data.map((m: Body) => m.id));
    if (page >= res.pagination.total_pages) break;
  }
  expect(seen).toEqual(rows.map((r) => r.id));
}, 60_000);
