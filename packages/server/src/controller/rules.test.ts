// The controller's rules as every protocol meets them: the transport fills
// the caller from the token, the service hands it down, and the controller
// keeps a tenant-bound caller to its tenant and refuses bad requests with
// the field at fault (and before anything changes).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../testing/world";
import { issueToken, loadSigningKey } from "../transport/auth";

let world: World;
let id: string;

// A REST call with a token bound to `tenantId` (Admin's permissions otherwise).
async function as(tenantId: string, method: string, path: string, body?: unknown) {
  const token = await issueToken(loadSigningKey(world.dataDir), { roles: ["Admin"], subject: `tenant-admin-${tenantId}`, tenantId });
  const res = await fetch(`${world.app.urls.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  world = await startWorld({ users: 10 });
  id = await world.createReplication("replica_rules", ["products"]);
}, 120_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe("a tenant-bound caller sees and changes its tenant only", () => {
  test("its own replication: read; another tenant's: NOT_FOUND, as if it did not exist", async () => {
    expect((await as("tenant-123", "GET", `/replications/${id}`)).body).toMatchObject({ id, tenant_id: "tenant-123" });
    const other = await as("tenant-999", "GET", `/replications/${id}`);
    expect(other.status).toBe(404);
    expect(other.body.error).toMatchObject({ code: "NOT_FOUND", message: `no replication ${id}` });
    for (const [method, path] of [["POST", `/replications/${id}/pause`], ["POST", `/replications/${id}/stop`], ["DELETE", `/replications/${id}`]] as const) {
      expect((await as("tenant-999", method, path)).status, `${method} ${path}`).toBe(404);
    }
    expect((await as("tenant-999", "PATCH", `/replications/${id}`, { config: { priority: 1 } })).status).toBe(404);
    expect((await world.rest("GET", `/replications/${id}`)).body.config.priority).not.toBe(1);
  });

  test("the list is its tenant's; asking for another tenant's is FORBIDDEN", async () => {
    expect((await as("tenant-123", "GET", "/replications")).body.data.map((r: { id: string }) => r.id)).toContain(id);
    expect((await as("tenant-999", "GET", "/replications")).body.data).toEqual([]);
    const other = await as("tenant-999", "GET", "/replications?tenant_id=tenant-123");
    expect(other.status).toBe(403);
    expect(other.body.error).toMatchObject({ code: "FORBIDDEN", message: "this token may only list tenant tenant-999", details: { tenant_id: "tenant-123" } });
  });

  test("creating for another tenant is FORBIDDEN", async () => {
    // A complete request (one without its required fields is a VALIDATION_ERROR first, naming them).
    const body = { tenant_id: "tenant-123", source: { connection_id: EAST, database: "production_db" }, target: { connection_id: WEST, database: "replica_other" } };
    const res = await as("tenant-999", "POST", "/replications", body);
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: "FORBIDDEN", message: "this token may only act for tenant tenant-999", details: { tenant_id: "tenant-123" } });
  });
});

describe("bad requests are refused with the field at fault", () => {
  test.each([
    ["a start from a position that is no LSN", "POST", "start", { from_checkpoint: "yesterday" }, "VALIDATION_ERROR", { field: "from_checkpoint" }],
    ["a start with 65 initial sync workers", "POST", "start", { initial_sync_parallelism: 65 }, "VALIDATION_ERROR", { field: "initial_sync_parallelism" }],
    ["an update naming the whole config", "PATCH", "", { update_mask: "config" }, "INVALID_REQUEST", { violations: [{ field: "update_mask", description: "no config fields to change" }] }],
  ])("%s", async (_, method, action, body, code, details) => {
    const res = await world.rest(method, `/replications/${id}${action ? `/${action}` : ""}`, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code, details });
    expect((await world.rest("GET", `/replications/${id}`)).body.status).toBe("Initializing");
  });

  test.each([
    ["a sort by an unknown field", "/replications?sort_by=colour", "sort_by"],
    ["a page below 1", "/replications?page=-1", "page"],
    ["a connection page over 100", "/connections?page_size=101", "page_size"],
    ["a connection id that is no UUID", "/connections/not-a-uuid", "connection_id"],
  ])("%s", async (_, path, field) => {
    const res = await world.rest("GET", path);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("INVALID_REQUEST");
    expect(res.body.error.details.violations.map((v: { field: string }) => v.field)).toEqual([field]);
  });

  test("a page of connections", async () => {
    const res = await world.rest("GET", "/connections?page_size=1&region=us-east-1");
    expect(res.body.data).toHaveLength(1);
    expect(res.body.pagination).toEqual({ page: 1, page_size: 1, total_items: 1, total_pages: 1 });
  });
});
