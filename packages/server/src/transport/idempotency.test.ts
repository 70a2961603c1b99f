// Idempotency-Key over REST on a real server: a repeat answers the first
// response again, another request with the key is a CONFLICT, and a failed
// request frees its key. Registering a connection is the request: it
// probes the database (through the engine) before it keeps anything.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startWorld, type World } from "../testing/world";

let world: World;

beforeAll(async () => {
  world = await startWorld({ users: 10 });
}, 120_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

async function register(key: string, body: Record<string, unknown>) {
  const res = await fetch(`${world.app.urls.rest}/connections`, {
    method: "POST",
    headers: { authorization: `Bearer ${world.token}`, "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const connection = (over: Record<string, unknown> = {}) => ({
  connection_id: randomUUID(),
  host: world.west.host,
  port: world.west.port,
  user: world.west.user,
  password: world.west.password,
  database: "replica_db",
  sslmode: "disable",
  ...over,
});

test("the same key and request answer the first response again; another request with the key is a CONFLICT", async () => {
  const key = randomUUID();
  const body = connection();
  const first = await register(key, body);
  expect(first.status, JSON.stringify(first.body)).toBe(201);
  const again = await register(key, body);
  expect(again.status).toBe(201);
  expect(again.body).toEqual(first.body);
  expect(again.headers.get("idempotent-replayed")).toBe("true");
  const other = await register(key, connection());
  expect(other.status).toBe(409);
  expect(other.body.error).toMatchObject({ code: "CONFLICT", message: "this Idempotency-Key was used with a different request" });
});

test("a request that failed (the probe could not connect) frees its key", async () => {
  const key = randomUUID();
  const body = connection();
  const failed = await register(key, { ...body, password: "wrong" });
  expect(failed.status).toBe(400);
  expect(failed.body.error.code).toBe("VALIDATION_ERROR");
  expect(failed.body.error.message).toMatch(new RegExp(`^cannot connect to ${world.west.host}:${world.west.port}: password authentication failed`));
  const retried = await register(key, body);
  expect(retried.status, JSON.stringify(retried.body)).toBe(201);
  expect(retried.body.connection_id).toBe(body.connection_id);
});

test("keys are a tenant's own: two tenants' tokens with one subject do not share them", async () => {
  const { issueToken, loadSigningKey } = await import("./auth");
  const as = (tenantId: string) => issueToken(loadSigningKey(world.dataDir), { roles: ["Admin"], subject: "cli", tenantId });
  const key = randomUUID();
  const post = async (token: string, body: Record<string, unknown>) => {
    const res = await fetch(`${world.app.urls.rest}/connections`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify(body),
    });
    return { status: res.status, replayed: res.headers.get("idempotent-replayed"), body: await res.json() };
  };
  const first = await post(await as("tenant-a"), connection());
  expect(first.status, JSON.stringify(first.body)).toBe(201);
  // Another tenant's request with the same key is its own request: done, not refused and not answered with the first's response.
  const second = await post(await as("tenant-b"), connection());
  expect(second.status, JSON.stringify(second.body)).toBe(201);
  expect(second.replayed).toBeNull();
  expect(second.body.owner_tenant_id).toBe("tenant-b");
});

test("requests racing with one key that all fail get their own error or a CONFLICT, never a 500", async () => {
  const key = randomUUID();
  const body = connection({ password: "wrong" });
  const answers = await Promise.all(Array.from({ length: 12 }, () => register(key, body)));
  for (const answer of answers) {
    expect([400, 409], JSON.stringify(answer.body)).toContain(answer.status);
    expect(answer.body.error.code).toMatch(/^(VALIDATION_ERROR|CONFLICT)$/);
  }
});
