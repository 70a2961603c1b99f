// Two tenants attack each other through every unary RPC of ConnectionService
// and ReplicationService, over REST and over gRPC: another tenant's
// connection or replication answers exactly as one that does not exist, and
// nothing of it changes. Then what one tenant may do with the connections it
// may use: only within a grant, never into a system schema, the control
// plane's database, a database that does not exist, or its own source; and
// cleanup_target drops only what the replication created.
import { randomUUID } from "node:crypto";
import { seedTenant, waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startWorld, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { fields, grpcCall, grpcClients, restCall, type Clients, type Outcome } from "./callers";

let world: World;
let tokens: { a: string; b: string; operator: string };
let grpc: Clients;
// Each tenant's own connections (source on us-east-1, target on us-west-2), and the operator's, granted to both.
const ids = { aEast: randomUUID(), aWest: randomUUID(), bEast: randomUUID(), bWest: randomUUID(), shared: randomUUID() };
const replications = { a: "", b: "" };
// What tenant-a created through its grant on the shared connection.
const granted: string[] = [];

const rest = (token: string, method: string, path: string, body?: unknown) => restCall(world.app, token, method, path, body);

async function register(token: string, id: string, cluster: World["east"], database: string): Promise<void> {
  const res = await rest(token, "POST", "/connections", { connection_id: id, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database, sslmode: "disable" });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

async function createReplication(token: string, tenant: string, source: object, target: object): Promise<Outcome> {
  return rest(token, "POST", "/replications", { tenant_id: tenant, source, target, config: { table_filter: ["products.*"] } });
}

beforeAll(async () => {
  world = await startWorld({ users: 10 });
  const key = loadSigningKey(world.dataDir);
  tokens = {
    a: await issueToken(key, { roles: ["Admin"], tenantId: "tenant-a", subject: "admin-a" }),
    b: await issueToken(key, { roles: ["Admin"], tenantId: "tenant-b", subject: "admin-b" }),
    operator: world.token,
  };
  grpc = grpcClients(world.app);
  await world.east.createDatabase("tenant_b_db");
  const b = await world.east.connect("tenant_b_db");
  await seedTenant(b, 10).finally(() => b.end());
  await Promise.all(["tenancy_a", "tenancy_b", "tenancy_cleanup", "tenancy_granted_rest", "tenancy_granted_grpc"].map((d) => world.west.createDatabase(d)));
  await register(tokens.a, ids.aEast, world.east, "production_db");
  await register(tokens.a, ids.aWest, world.west, "replica_db");
  await register(tokens.b, ids.bEast, world.east, "tenant_b_db");
  await register(tokens.b, ids.bWest, world.west, "replica_db");
  await register(tokens.operator, ids.shared, world.east, "production_db");
  for (const [tenant_id, database] of [["tenant-a", "production_db"], ["tenant-b", "tenant_b_db"]]) {
    const res = await rest(tokens.operator, "POST", `/connections/${ids.shared}/grants`, { tenant_id, databases: [database], schemas: ["public"] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
  for (const [tenant, token, east, west, database] of [["a", tokens.a, ids.aEast, ids.aWest, "tenancy_a"], ["b", tokens.b, ids.bEast, ids.bWest, "tenancy_b"]] as const) {
    const res = await createReplication(token, `tenant-${tenant}`, { connection_id: east }, { connection_id: west, database });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    replications[tenant] = res.body.id;
  }
}, 180_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

// tenant-b against tenant-a's connections and replication, each RPC as REST and as gRPC.
type Attack = { rpc: string; rest: () => [string, string, unknown?]; grpc: (o: { headers: Record<string, string> }) => Promise<unknown>; code: string; field?: string };
const a = () => ({ conn: ids.aEast, target: ids.aWest, rep: replications.a });
const attacks: Attack[] = [
  { rpc: "GetConnection", rest: () => ["GET", `/connections/${a().conn}`], grpc: (o) => grpc.connections.getConnection({ connectionId: a().conn }, o), code: "NOT_FOUND" },
  { rpc: "DeleteConnection", rest: () => ["DELETE", `/connections/${a().conn}`], grpc: (o) => grpc.connections.deleteConnection({ connectionId: a().conn }, o), code: "NOT_FOUND" },
  {
    rpc: "GrantConnection",
    rest: () => ["POST", `/connections/${a().conn}/grants`, { tenant_id: "tenant-b", databases: ["*"], schemas: ["*"] }],
    grpc: (o) => grpc.connections.grantConnection({ connectionId: a().conn, grant: { tenantId: "tenant-b", databases: ["*"], schemas: ["*"] } }, o),
    code: "NOT_FOUND",
  },
  {
    rpc: "RevokeConnectionGrant",
    rest: () => ["DELETE", `/connections/${a().conn}/grants/tenant-a`],
    grpc: (o) => grpc.connections.revokeConnectionGrant({ connectionId: a().conn, tenantId: "tenant-a" }, o),
    code: "NOT_FOUND",
  },
  {
    rpc: "CreateReplication (source: tenant-a's connection)",
    rest: () => ["POST", "/replications", { tenant_id: "tenant-b", source: { connection_id: a().conn }, target: { connection_id: ids.bWest, database: "tenancy_b" } }],
    grpc: (o) => grpc.replications.createReplication({ tenantId: "tenant-b", source: { connectionId: a().conn }, target: { connectionId: ids.bWest, database: "tenancy_b" } }, o),
    code: "VALIDATION_ERROR",
    field: "source.connection_id",
  },
  {
    rpc: "CreateReplication (target: tenant-a's connection)",
    rest: () => ["POST", "/replications", { tenant_id: "tenant-b", source: { connection_id: ids.bEast }, target: { connection_id: a().target, database: "tenancy_a" } }],
    grpc: (o) => grpc.replications.createReplication({ tenantId: "tenant-b", source: { connectionId: ids.bEast }, target: { connectionId: a().target, database: "tenancy_a" } }, o),
    code: "VALIDATION_ERROR",
    field: "target.connection_id",
  },
  {
    rpc: "CreateReplication (for tenant-a)",
    rest: () => ["POST", "/replications", { tenant_id: "tenant-a", source: { connection_id: a().conn }, target: { connection_id: a().target } }],
    grpc: (o) => grpc.replications.createReplication({ tenantId: "tenant-a", source: { connectionId: a().conn }, target: { connectionId: a().target } }, o),
    code: "FORBIDDEN",
  },
  { rpc: "GetReplication", rest: () => ["GET", `/replications/${a().rep}`], grpc: (o) => grpc.replications.getReplication({ id: a().rep }, o), code: "NOT_FOUND" },
  {
    rpc: "UpdateReplication",
    rest: () => ["PATCH", `/replications/${a().rep}`, { config: { priority: 1 } }],
    grpc: (o) => grpc.replications.updateReplication({ id: a().rep, config: { priority: 1 }, updateMask: { paths: ["config.priority"] } }, o),
    code: "NOT_FOUND",
  },
  { rpc: "StartReplication", rest: () => ["POST", `/replications/${a().rep}/start`, {}], grpc: (o) => grpc.replications.startReplication({ id: a().rep }, o), code: "NOT_FOUND" },
  { rpc: "PauseReplication", rest: () => ["POST", `/replications/${a().rep}/pause`], grpc: (o) => grpc.replications.pauseReplication({ id: a().rep }, o), code: "NOT_FOUND" },
  { rpc: "StopReplication", rest: () => ["POST", `/replications/${a().rep}/stop`], grpc: (o) => grpc.replications.stopReplication({ id: a().rep }, o), code: "NOT_FOUND" },
  { rpc: "DeleteReplication", rest: () => ["DELETE", `/replications/${a().rep}?cleanup_target=true`], grpc: (o) => grpc.replications.deleteReplication({ id: a().rep, cleanupTarget: true }, o), code: "NOT_FOUND" },
];

describe.each(["REST", "gRPC"] as const)("tenant-b attacks tenant-a over %s", (protocol) => {
  const call = (attack: Attack, token: string) => (protocol === "REST" ? rest(token, ...attack.rest()) : grpcCall(token, attack.grpc));

  test.each(attacks.map((attack) => [attack.rpc, attack] as const))("%s: refused, as for something that does not exist", async (_, attack) => {
    const outcome = await call(attack, tokens.b);
    expect(outcome.code, outcome.message).toBe(attack.code);
    if (attack.field) expect(fields(outcome)).toEqual([attack.field]);
    // The same answer as for ids nothing has: the caller cannot tell "someone else's" from "none".
    const stranger = randomUUID();
    const swap = (text: string) => text.replaceAll(ids.aEast, stranger).replaceAll(ids.aWest, stranger).replaceAll(replications.a, stranger);
    const real = { ...attack, rest: () => JSON.parse(swap(JSON.stringify(attack.rest()))) as [string, string, unknown?] };
    const missing = protocol === "REST" ? await call(real, tokens.b) : undefined;
    if (missing) expect([swap(outcome.message), swap(JSON.stringify(outcome.details))]).toEqual([missing.message, JSON.stringify(missing.details)]);
  });

  test("lists show tenant-b its own connections and the one granted to it, with its own grant only; never tenant-a's", async () => {
    const listed =
      protocol === "REST"
        ? (await rest(tokens.b, "GET", "/connections")).body.data.map((c: { connection_id: string; grants: { tenant_id: string }[] }) => [c.connection_id, c.grants.map((g) => g.tenant_id)])
        : (await grpc.connections.listConnections({}, { headers: { authorization: `Bearer ${tokens.b}` } })).connections.map((c) => [c.connectionId, c.grants.map((g) => g.tenantId)]);
    expect(new Map(listed)).toEqual(new Map([[ids.bEast, []], [ids.bWest, []], [ids.shared, ["tenant-b"]]]));
    const replicationsOfB = (await rest(tokens.b, "GET", "/replications")).body.data.map((r: { id: string }) => r.id);
    expect(replicationsOfB).toEqual([replications.b]);
  });

  test("tenant-a's connections and replication are untouched", async () => {
    for (const id of [ids.aEast, ids.aWest]) expect((await rest(tokens.a, "GET", `/connections/${id}`)).body).toMatchObject({ connection_id: id, owner_tenant_id: "tenant-a", grants: [] });
    expect((await rest(tokens.a, "GET", `/replications/${replications.a}`)).body).toMatchObject({ id: replications.a, status: "Initializing", config: { priority: 0 } });
    // The operator sees both tenants' grants.
    const shared = (await rest(tokens.operator, "GET", `/connections/${ids.shared}`)).body;
    expect(shared.grants.map((g: { tenant_id: string }) => g.tenant_id).sort()).toEqual(["tenant-a", "tenant-b"]);
  });
});

describe("what a tenant may do with the connections it may use", () => {
  // Each case as REST and as gRPC; the target database differs by protocol where a case succeeds.
  const cases: [string, (p: string) => { source: object; target: object }, string, string?][] = [
    ["within its grant", (p) => ({ source: { connection_id: ids.shared, database: "production_db", schema: "public" }, target: { connection_id: ids.aWest, database: `tenancy_granted_${p}` } }), "OK"],
    ["a database outside its grant", () => ({ source: { connection_id: ids.shared, database: "tenant_b_db" }, target: { connection_id: ids.aWest, database: "tenancy_a" } }), "VALIDATION_ERROR", "source.database"],
    ["a schema outside its grant", () => ({ source: { connection_id: ids.shared, database: "production_db", schema: "sales" }, target: { connection_id: ids.aWest, database: "tenancy_a" } }), "VALIDATION_ERROR", "source.schema"],
    ["a target equal to its source", () => ({ source: { connection_id: ids.aEast }, target: { connection_id: ids.aEast, database: "production_db", schema: "public" } }), "VALIDATION_ERROR", "target"],
    ["a target equal to its source through another connection to the same server", () => ({ source: { connection_id: ids.aEast }, target: { connection_id: ids.shared } }), "VALIDATION_ERROR", "target"],
    ["a target in pg_catalog", () => ({ source: { connection_id: ids.aEast }, target: { connection_id: ids.aWest, database: "tenancy_a", schema: "pg_catalog" } }), "VALIDATION_ERROR", "target.schema"],
    ["a target in information_schema", () => ({ source: { connection_id: ids.aEast }, target: { connection_id: ids.aWest, database: "tenancy_a", schema: "information_schema" } }), "VALIDATION_ERROR", "target.schema"],
    ["a target in the engine's checkpoint schema", () => ({ source: { connection_id: ids.aEast }, target: { connection_id: ids.aWest, database: "tenancy_a", schema: "heliosdb_replication" } }), "VALIDATION_ERROR", "target.schema"],
    ["a target database that does not exist", () => ({ source: { connection_id: ids.aEast }, target: { connection_id: ids.aWest, database: "no_such_db" } }), "VALIDATION_ERROR", "target.database"],
  ];
  test.each(cases.flatMap(([name, body, code, field]) => (["rest", "grpc"] as const).map((p) => [`${name} (${p})`, p, body(p), code, field] as const)))(
    "%s",
    async (_, protocol, { source, target }, code, field) => {
      const outcome =
        protocol === "rest"
          ? await createReplication(tokens.a, "tenant-a", source, target)
          : await grpcCall(tokens.a, (o) => grpc.replications.createReplication({ tenantId: "tenant-a", source: camel(source), target: camel(target), config: { tableFilter: ["products.*"] } }, o));
      expect(outcome.code, outcome.message).toBe(code);
      if (field) expect(fields(outcome)).toEqual([field]);
      if (code === "OK") granted.push(outcome.body.id);
    },
  );

  test("the control plane's own database is neither source nor target", async () => {
    // A server allowed to reach the control plane's cluster, and a connection of tenant-a's to it.
    const server = await world.startServer({ allowHosts: [...world.allowHosts, `${world.control.host}:${world.control.port}`] });
    const control = randomUUID();
    const c = world.control;
    const registered = await restCall(server, tokens.a, "POST", "/connections", { connection_id: control, host: c.host, port: c.port, user: c.user, password: c.password, database: "controlplane", sslmode: "disable" });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const res = await restCall(server, tokens.a, "POST", "/replications", { tenant_id: "tenant-a", source: { connection_id: ids.aEast }, target: { connection_id: control } });
    expect(res.code).toBe("VALIDATION_ERROR");
    expect(res.body.error.details.violations).toEqual([{ field: "target.database", description: '"controlplane" is the control plane\'s own database' }]);
    await world.stopServer(server);
  });

  test("grants are the operator's: a tenant neither grants nor removes an operator's connection, and cannot register one for another tenant", async () => {
    expect((await rest(tokens.a, "POST", `/connections/${ids.aEast}/grants`, { tenant_id: "tenant-b", databases: ["*"], schemas: ["*"] })).code).toBe("FORBIDDEN");
    expect((await rest(tokens.a, "DELETE", `/connections/${ids.shared}`)).code).toBe("FORBIDDEN");
    expect((await rest(tokens.a, "DELETE", `/connections/${ids.shared}/grants/tenant-b`)).code).toBe("FORBIDDEN");
    const other = await rest(tokens.a, "POST", "/connections", { host: world.east.host, port: world.east.port, user: "x", owner_tenant_id: "tenant-b" });
    expect(other.code).toBe("FORBIDDEN");
    // The operator grants operator-owned connections only, and each grant names what it allows.
    expect(fields(await rest(tokens.operator, "POST", `/connections/${ids.aEast}/grants`, { tenant_id: "tenant-b", databases: ["*"], schemas: ["*"] }))).toEqual(["connection_id"]);
    expect(fields(await rest(tokens.operator, "POST", `/connections/${ids.shared}/grants`, { tenant_id: "tenant-c", databases: [], schemas: ["x".repeat(64)] }))).toEqual(["databases", "schemas[0]"]);
  });

  test("revoking a grant in use is a CONFLICT; once revoked, the tenant no longer sees the connection", async () => {
    // The two made "within its grant" (over REST and over gRPC) read through it.
    expect(granted).toHaveLength(2);
    expect((await rest(tokens.operator, "DELETE", `/connections/${ids.shared}/grants/tenant-a`)).code).toBe("CONFLICT");
    for (const id of granted) expect((await rest(tokens.a, "DELETE", `/replications/${id}`)).status).toBe(204);
    expect((await rest(tokens.operator, "DELETE", `/connections/${ids.shared}/grants/tenant-a`)).status).toBe(204);
    expect((await rest(tokens.a, "GET", `/connections/${ids.shared}`)).code).toBe("NOT_FOUND");
    expect((await rest(tokens.b, "GET", `/connections/${ids.shared}`)).status).toBe(200);
  });

  test("cleanup_target drops the tables the replication created and leaves one that was there", async () => {
    const target = await world.west.connect("tenancy_cleanup");
    try {
      await target.query("CREATE TABLE products (sku text PRIMARY KEY, title text NOT NULL, price numeric(10,2), tags text[], attributes jsonb)");
      const created = await rest(tokens.a, "POST", "/replications", {
        tenant_id: "tenant-a",
        source: { connection_id: ids.aEast },
        target: { connection_id: ids.aWest, database: "tenancy_cleanup" },
        config: { table_filter: ["products.*", "users.*"] },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.id;
      await rest(tokens.a, "POST", `/replications/${id}/start`, {});
      await waitFor(async () => (await rest(tokens.a, "GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
      expect((await rest(tokens.a, "DELETE", `/replications/${id}?cleanup_target=true`)).status).toBe(204);
      const tables = await target.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
      expect(tables.rows.map((t) => t.tablename)).toEqual(["products"]);
      expect((await target.query("SELECT count(*)::int AS n FROM products")).rows[0].n).toBeGreaterThan(0);
    } finally {
      await target.end();
    }
  }, 90_000);
});

// The REST body's endpoint in the proto's field names.
function camel(o: object): object {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()), v]));
}
