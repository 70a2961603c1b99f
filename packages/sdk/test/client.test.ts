// HeliosDBReplicationClient against the real server (embedded PostgreSQL,
// real listeners), as spec §9.1 uses it: an API key, the create of §9.1 with
// its camelCase parameters and `qosTier: 'Premium'`, start; then every page
// of a list, a partial update, the typed errors, and parameters refused
// before anything is sent.
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../server/src/testing/world";
import { equals } from "@bufbuild/protobuf";
import { QoSTier, ReplicationSchema, ReplicationStatus } from "@heliosdb/replication-proto";
import { grpc } from "../src/node/index";
import { HeliosDBReplicationClient, InvalidRequestError, NotFoundError, UnauthorizedError, ValidationError } from "../src/index";

let world: World;
let apiKey: string;
const sent: string[] = [];
// The platform's fetch, counting what the client sends.
const counting: typeof fetch = (input, init) => {
  sent.push(`${init?.method ?? "GET"} ${String(input)}`);
  return fetch(input, init);
};

beforeAll(async () => {
  world = await startWorld({ users: 100 });
  for (const db of ["sdk_client_1", "sdk_client_2", "sdk_client_3", "sdk_client_4"]) await world.west.createDatabase(db);
  const key = await world.rest("POST", "/api-keys", { name: "sdk tests", roles: ["Operator"], tenant_id: "tenant-123", tier: "Standard" });
  expect(key.status).toBe(201);
  apiKey = key.body.secret;
}, 180_000);

afterAll(() => world?.close(), 120_000);

const client = () => new HeliosDBReplicationClient({ apiKey, baseUrl: world.app.urls.rest, fetch: counting });

test("spec §9.1 as written: create with an API key and camelCase parameters, then start", async () => {
  const c = client();
  const replication = await c.replications.create({
    tenantId: "tenant-123",
    source: { connectionId: EAST, database: "production_db" },
    target: { connectionId: WEST, database: "sdk_client_1" },
    config: { qosTier: "Premium", maxLagSeconds: 5, priority: 90, tableFilter: ["users.*"] },
  });
  expect(replication.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(replication.config).toMatchObject({ qosTier: QoSTier.PREMIUM, maxLagSeconds: 5, priority: 90 });
  const started = await c.replications.start(replication.id);
  expect(started.id).toBe(replication.id);
  await expect.poll(async () => (await c.replications.get(replication.id)).status, { timeout: 60_000, interval: 500 }).toBe(ReplicationStatus.STREAMING);
}, 90_000);

test("a list is its first page when awaited and every replication when iterated; update changes only what it names", async () => {
  const c = client();
  const ids: string[] = [];
  for (const db of ["sdk_client_2", "sdk_client_3", "sdk_client_4"]) {
    ids.push((await c.replications.create({ tenantId: "tenant-123", source: { connectionId: EAST, database: "production_db" }, target: { connectionId: WEST, database: db }, config: { qosTier: "Standard", priority: 10 } })).id);
  }
  const first = await c.replications.list({ tenantId: "tenant-123", pageSize: 2 });
  expect(first.items).toHaveLength(2);
  expect(first).toMatchObject({ page: 1, pageSize: 2, totalItems: 4, totalPages: 2 });
  const all: string[] = [];
  for await (const r of c.replications.list({ tenantId: "tenant-123", pageSize: 2 })) all.push(r.id);
  expect(all).toHaveLength(4);
  expect(new Set(all).size).toBe(4);
  for (const id of ids) expect(all).toContain(id);
  // An enum filter by the spec's name.
  const standard: string[] = [];
  for await (const r of c.replications.list({ tenantId: "tenant-123", qosTier: "Standard" })) standard.push(r.id);
  expect(standard.sort()).toEqual([...ids].sort());

  const updated = await c.replications.update(ids[0]!, { config: { maxLagSeconds: 42 } });
  expect(updated.config).toMatchObject({ maxLagSeconds: 42, priority: 10 });
  await c.replications.delete(ids[0]!);
  await expect(c.replications.get(ids[0]!)).rejects.toBeInstanceOf(NotFoundError);
}, 60_000);

test("errors are typed; parameters the request cannot take are refused before anything is sent", async () => {
  const c = client();
  const missing = await c.replications.get("00000000-0000-4000-8000-000000000000").catch((e: unknown) => e);
  expect(missing).toBeInstanceOf(NotFoundError);
  expect(missing).toMatchObject({ status: 404, code: "NOT_FOUND" });
  expect((missing as NotFoundError).requestId).toBeTruthy();

  const before = sent.length;
  // An unknown enum name: the types refuse it (test/params-types.test.ts); JavaScript callers get this.
  // @ts-expect-error "Gold" is not a QoSTier
  const badEnum = await c.replications.create({ tenantId: "tenant-123", config: { qosTier: "Gold" } }).catch((e: unknown) => e);
  expect(badEnum).toBeInstanceOf(InvalidRequestError);
  expect((badEnum as InvalidRequestError).message).toContain("config.qosTier");
  expect((badEnum as InvalidRequestError).message).toContain("Premium");
  // A misspelt name (the type system catches it too; JavaScript callers get this).
  const typo = await c.replications.create({ tenantID: "tenant-123" } as never).catch((e: unknown) => e);
  expect(typo).toBeInstanceOf(InvalidRequestError);
  expect((typo as InvalidRequestError).details).toEqual({ violations: [{ field: "tenantID", description: "not a parameter of CreateReplicationRequest" }] });
  expect(sent.length).toBe(before);

  const stranger = new HeliosDBReplicationClient({ apiKey: "hdb_not_a_real_key_at_all_0000000000000000", baseUrl: world.app.urls.rest });
  await expect(stranger.replications.list()).rejects.toBeInstanceOf(UnauthorizedError);
  // OAuth client credentials (spec §5.3): a confidential client of the tenant, its token asked for once.
  const oauthClient = await world.rest("POST", "/oauth-clients", { name: "sdk service", confidential: true, tenant_id: "tenant-123", roles: ["Viewer"] });
  expect(oauthClient.status).toBe(201);
  const tokens: string[] = [];
  const viaOAuth = new HeliosDBReplicationClient({
    oauth: { clientId: oauthClient.body.client.client_id, clientSecret: oauthClient.body.client_secret },
    baseUrl: world.app.urls.rest,
    fetch: (input, init) => (String(input).endsWith("/oauth/token") && tokens.push(String(input)), fetch(input, init)),
  });
  expect((await viaOAuth.replications.list({ tenantId: "tenant-123" })).page).toBe(1);
  await viaOAuth.replications.list({ tenantId: "tenant-123" });
  expect(tokens).toEqual([`${new URL(world.app.urls.rest).origin}/oauth/token`]);
  // A Viewer: reading is allowed, changing is not.
  await expect(viaOAuth.replications.create({ tenantId: "tenant-123" })).rejects.toMatchObject({ code: "FORBIDDEN", status: 403 });
  const wrongSecret = new HeliosDBReplicationClient({ oauth: { clientId: oauthClient.body.client.client_id, clientSecret: "nope" }, baseUrl: world.app.urls.rest });
  await expect(wrongSecret.replications.list()).rejects.toBeInstanceOf(UnauthorizedError);

  // A token function is asked before each call.
  let asked = 0;
  const withToken = new HeliosDBReplicationClient({ token: () => (asked++, world.token), baseUrl: world.app.urls.rest });
  await withToken.replications.list({ tenantId: "tenant-123" });
  await withToken.replications.list({ tenantId: "tenant-123" });
  expect(asked).toBe(2);
});

test("REST, Connect, gRPC-web and gRPC answer the same messages and throw the same errors", async () => {
  const transports = ["rest", "connect", "grpc-web", "grpc"] as const;
  const clients = transports.map((transport) => new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest, transport: transport === "grpc" ? grpc(world.app.urls.grpc) : transport }));
  const [rest] = clients;
  await world.west.createDatabase("sdk_client_5");
  const id = (await rest!.replications.create({ tenantId: "tenant-123", source: { connectionId: EAST, database: "production_db" }, target: { connectionId: WEST, database: "sdk_client_5" }, config: { qosTier: "BestEffort", priority: 7 } })).id;

  const got = await Promise.all(clients.map((c) => c.replications.get(id)));
  for (const [i, r] of got.entries()) expect(equals(ReplicationSchema, r, got[0]!), transports[i]).toBe(true);
  const pages = await Promise.all(clients.map((c) => c.replications.list({ tenantId: "tenant-123", qosTier: "BestEffort" })));
  for (const [i, p] of pages.entries()) {
    expect(p.items.map((r) => r.id), transports[i]).toEqual([id]);
    expect(equals(ReplicationSchema, p.items[0]!, pages[0]!.items[0]!), transports[i]).toBe(true);
  }
  // Each transport changes it in turn, and sees the others' change.
  for (const [i, c] of clients.entries()) {
    const updated = await c.replications.update(id, { config: { maxLagSeconds: 100 + i } });
    expect(updated.config?.maxLagSeconds, transports[i]).toBe(100 + i);
  }

  const missing = await Promise.all(clients.map((c) => c.replications.get("00000000-0000-4000-8000-000000000000").catch((e: unknown) => e)));
  const invalid = await Promise.all(clients.map((c) => c.replications.create({ tenantId: "tenant-123" }).catch((e: unknown) => e)));
  for (const [i, errors] of [missing, invalid].entries()) {
    const Class = i === 0 ? NotFoundError : ValidationError;
    for (const [t, e] of errors.entries()) {
      expect(e, transports[t]).toBeInstanceOf(Class);
      const { code, status, details, message } = e as NotFoundError;
      expect({ code, status, details, message }, transports[t]).toEqual({ code: (errors[0] as NotFoundError).code, status: (errors[0] as NotFoundError).status, details: (errors[0] as NotFoundError).details, message: (errors[0] as NotFoundError).message });
      expect((e as NotFoundError).requestId, transports[t]).toBeTruthy();
    }
  }
  // A stream on each: its first sample, at once.
  for (const [i, c] of clients.entries()) {
    for await (const sample of c.replications.streamMetrics(id, { intervalSeconds: 60 })) {
      expect(sample.replicationId, transports[i]).toBe(id);
      break;
    }
  }
  await rest!.replications.delete(id);
});

test("every resource: connections, routing, API keys (a revoked key refused), metrics, health, audit, OAuth clients, users, failovers and migrations (failovers.test.ts and migrations.test.ts run them)", async () => {
  for (const transport of ["rest", "connect"] as const) {
    const c = new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest, transport });
    const connections: string[] = [];
    for await (const conn of c.connections.list()) connections.push(conn.connectionId);
    expect(connections, transport).toEqual(expect.arrayContaining([EAST, WEST]));
    const east = await c.connections.get(EAST);
    expect(east.connectionId).toBe(EAST);
    // Its password is sealed on the server: never answered, on any transport.
    expect(east.password).toBe("");
    expect(east.passwordSet).toBe(true);

    const routing: unknown = await c.routing.get("tenant-123").catch((e: unknown) => e);
    // The spec's tenant has no routing until a replication of it is promoted: NOT_FOUND, typed.
    if (routing instanceof Error) expect(routing, transport).toBeInstanceOf(NotFoundError);
    else expect((routing as { tenantId: string }).tenantId).toBe("tenant-123");

    const { apiKey, secret } = await c.apiKeys.create({ name: `sdk ${transport}`, tenantId: "tenant-123", roles: ["Viewer"], tier: "Standard" });
    expect(secret).toMatch(/^hdb_/);
    expect((await c.apiKeys.get(apiKey!.keyId)).name).toBe(`sdk ${transport}`);
    const viewer = new HeliosDBReplicationClient({ apiKey: secret, baseUrl: world.app.urls.rest, transport });
    await viewer.replications.list({ tenantId: "tenant-123" });
    const rotated = await c.apiKeys.rotate(apiKey!.keyId);
    expect(rotated.secret).not.toBe(secret);
    await c.apiKeys.revoke(rotated.apiKey!.keyId);
    const revoked = await new HeliosDBReplicationClient({ apiKey: rotated.secret, baseUrl: world.app.urls.rest, transport }).replications.list().catch((e: unknown) => e);
    expect(revoked, transport).toBeInstanceOf(UnauthorizedError);

    const [first] = (await c.replications.list({ tenantId: "tenant-123" })).items;
    const series = await c.metrics.get(first!.id, { startTime: new Date(Date.now() - 3_600_000), endTime: new Date(), resolution: "1m" });
    expect(series.replicationId).toBe(first!.id);
    const aggregate = await c.metrics.aggregate({ groupBy: "tenant_id" });
    expect(aggregate.timeRange).toBeDefined();

    expect((await c.health.check()).status).toBeTruthy();
    expect((await c.health.ready()).$typeName).toBe("heliosdb.replication.v1.ReadyResponse");

    // The audit log holds the key's creation; OAuth clients and users round-trip.
    const audited: string[] = [];
    for await (const e of c.audit.list({ tenantId: "tenant-123", rpc: "ApiKeyService.CreateApiKey" })) audited.push(e.rpc);
    expect(audited.length, transport).toBeGreaterThan(0);
    const created = await c.oauthClients.create({ name: `sdk ${transport}`, confidential: true, tenantId: "tenant-123", roles: ["Viewer"] });
    expect(created.clientSecret).toBeTruthy();
    expect((await c.oauthClients.get(created.client!.clientId)).name).toBe(`sdk ${transport}`);
    await c.oauthClients.delete(created.client!.clientId);
    await expect(c.oauthClients.get(created.client!.clientId)).rejects.toBeInstanceOf(NotFoundError);
    const user = await c.users.create({ username: `sdk-${transport}`, password: "correct horse battery staple", tenantId: "tenant-123", roles: ["Viewer"] });
    expect((await c.users.get(user.userId)).username).toBe(`sdk-${transport}`);
    await c.users.setPassword(user.userId, "another correct horse battery");
    await c.users.delete(user.userId);

    const failover = await c.failovers.get("750e8400-e29b-41d4-a716-446655449999").catch((e: unknown) => e);
    expect(failover, transport).toBeInstanceOf(NotFoundError);
    const migrations: unknown[] = [];
    for await (const m of c.migrations.list()) migrations.push(m);
    expect(migrations, transport).toEqual([]);
    await expect(c.migrations.get("750e8400-e29b-41d4-a716-446655449999"), transport).rejects.toBeInstanceOf(NotFoundError);
  }
}, 60_000);
