// The connection API is not a network scanner. Registering a connection
// reaches only destinations the policy allows (link-local, cloud metadata
// and loopback denied unless allowed; Unix sockets never), every address a
// name resolves to is checked and the socket connects to the address it
// checked; a tenant's caller learns only that a connection failed, never
// why; and every field is bounded.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startCluster, type Cluster } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startApp, type RunningApp } from "../../src/app";
import { DestinationPolicy, DestinationRefused } from "../../src/controller/destinations";
import { createPool } from "../../src/store/db";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { fields, restCall, type Outcome } from "./callers";

let cluster: Cluster;
let pool: pg.Pool;
let dataDir: string;
let app: RunningApp;
let notPostgres: Server;
const ports = { open: 0, closed: 0, denied: 0 };
const tokens = { operator: "", tenant: "" };

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createDatabase("controlplane");
  pool = createPool(cluster.url("controlplane"));
  dataDir = mkdtempSync(join(tmpdir(), "heliosdb-destinations-"));
  // An open port that is no PostgreSQL: it answers nonsense and hangs up.
  notPostgres = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.end("HTTP/1.1 400 Bad Request\r\n\r\n", () => socket.destroy());
  });
  await new Promise<void>((resolve) => notPostgres.listen(0, "127.0.0.1", resolve));
  ports.open = (notPostgres.address() as { port: number }).port;
  [ports.closed, ports.denied] = [await freePort(), await freePort()];
  const allowHosts = [`127.0.0.1:${cluster.port}`, `127.0.0.1:${ports.open}`, `127.0.0.1:${ports.closed}`];
  app = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, allowHosts, denyHosts: ["10.1.2.3"], log: () => undefined });
  tokens.operator = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "operator" });
  tokens.tenant = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "tenant", tenantId: "tenant-a" });
}, 120_000);

afterAll(async () => {
  await app?.close();
  await pool?.end();
  await new Promise((resolve) => notPostgres?.close(resolve));
  await cluster?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

const register = (token: string, over: Record<string, unknown>): Promise<Outcome> =>
  restCall(app, token, "POST", "/connections", { host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, sslmode: "disable", ...over });

describe("destinations the policy refuses", () => {
  test.each([
    ["a link-local address (cloud metadata)", { host: "169.254.169.254", port: 80 }, /169\.254\.169\.254 is link-local/],
    ["an IPv6 link-local address", { host: "fe80::1", port: 5432 }, /fe80::1 is link-local/],
    ["metadata behind an IPv4-mapped IPv6 address", { host: "::ffff:169.254.169.254", port: 80 }, /169\.254\.169\.254 is link-local/],
    ["a cloud metadata name", { host: "metadata.google.internal", port: 80 }, /is a cloud metadata service/],
    ["a loopback port not allowed", { host: "127.0.0.1", port: 0 }, /127\.0\.0\.1 is loopback: not allowed unless --allow-hosts names it/],
    ["a name resolving to a denied address", { host: "localhost", port: 0 }, /localhost resolves to 127\.0\.0\.1, which is loopback/],
    ["an address the operator denied", { host: "10.1.2.3", port: 5432 }, /10\.1\.2\.3 is denied \(--deny-hosts 10\.1\.2\.3\)/],
  ])("%s: the operator learns why, a tenant only that the connection failed", async (_, where, why) => {
    const at = { ...where, port: where.port || ports.denied };
    const operator = await register(tokens.operator, at);
    expect(operator.code).toBe("VALIDATION_ERROR");
    expect(operator.message).toMatch(why);
    const tenant = await register(tokens.tenant, at);
    expect(tenant.status).toBe(400);
    expect(tenant.body.error).toMatchObject({ code: "VALIDATION_ERROR", message: "the connection failed", details: { host: at.host, port: at.port } });
    expect(tenant.body.error.request_id).toMatch(/^req-/);
  });

  test("a Unix socket is refused as a host, for everyone", async () => {
    for (const token of [tokens.operator, tokens.tenant]) {
      const res = await register(token, { host: "/var/run/postgresql" });
      expect(res.code).toBe("VALIDATION_ERROR");
      expect(res.body.error.details.violations).toEqual([{ field: "host", description: "Unix sockets are not allowed: name a TCP host" }]);
    }
  });

  test("a name is judged by the addresses it resolves to: localhost at an allowed port is registered", async () => {
    const res = await register(tokens.tenant, { host: "localhost", database: "postgres" });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ host: "localhost", owner_tenant_id: "tenant-a" });
  });
});

test("a tenant cannot tell an open port from a closed one, or a wrong password: one answer; the operator sees three", async () => {
  const probes = [{ host: "127.0.0.1", port: ports.open }, { host: "127.0.0.1", port: ports.closed }, { password: "wrong" }];
  const tenant = await Promise.all(probes.map((p) => register(tokens.tenant, p)));
  expect(new Set(tenant.map((t) => JSON.stringify([t.status, t.code, t.message, t.details.host])))).toEqual(new Set([JSON.stringify([400, "VALIDATION_ERROR", "the connection failed", "127.0.0.1"])]));
  const operator = await Promise.all(probes.map((p) => register(tokens.operator, p)));
  expect(new Set(operator.map((o) => o.message)).size).toBe(3);
  expect(operator[1]!.message).toMatch(/ECONNREFUSED/);
  expect(operator[2]!.message).toMatch(/password authentication failed/);
});

test.each([
  ["host", { host: `${"h".repeat(250)}.example` }],
  ["user", { user: "u".repeat(64) }],
  ["database", { database: "é".repeat(32) }], // 64 bytes of UTF-8
  ["name", { name: "n".repeat(201) }],
  ["password", { password: "p".repeat(1025) }],
  ["region", { region: "r".repeat(65) }],
  ["host", { host: "db.example.com,169.254.169.254" }],
])("a %s out of bounds is a VALIDATION_ERROR naming it, before anything connects", async (field, over) => {
  const res = await register(tokens.tenant, over);
  expect(res.code).toBe("VALIDATION_ERROR");
  expect(fields(res)).toEqual([field]);
});

// Text no database takes is refused for every message before any rule (input.ts).
test("a NUL in a connection field is an INVALID_REQUEST naming it, before anything connects", async () => {
  const res = await register(tokens.tenant, { user: "post\u0000gres" });
  expect(res.code).toBe("INVALID_REQUEST");
  // Named as the REST body holds it (the body is the request's `connection` field), as the rules' errors are.
  expect(res.details.violations).toEqual([{ field: "user", description: "contains a NUL character (U+0000)" }]);
});

describe("the policy's socket, under pg", () => {
  // A resolver of names no DNS knows: what the policy checks is what it connects to.
  const policy = (names: Record<string, string[]>, allow: string[]) => new DestinationPolicy({ allow, lookup: async (host) => names[host] ?? [] });
  const connect = async (p: DestinationPolicy, host: string) => {
    const client = new pg.Client({ host, port: cluster.port, user: cluster.user, password: cluster.password, database: "postgres", stream: p.stream, connectionTimeoutMillis: 5000 });
    client.on("error", () => undefined);
    try {
      await client.connect();
      return (await client.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one;
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  test("connects to the address it checked", async () => {
    expect(await connect(policy({ "pg.test": ["127.0.0.1"] }, [`127.0.0.1:${cluster.port}`]), "pg.test")).toBe(1);
  });

  test("refuses a name with any denied address, and a Unix socket, before connecting", async () => {
    const rebinding = policy({ "pg.test": ["127.0.0.1", "169.254.169.254"] }, [`127.0.0.1:${cluster.port}`]);
    await expect(connect(rebinding, "pg.test")).rejects.toThrow(DestinationRefused);
    await expect(connect(rebinding, "pg.test")).rejects.toThrow(/pg\.test resolves to 169\.254\.169\.254, which is link-local/);
    await expect(connect(rebinding, "/tmp")).rejects.toThrow(/Unix socket/);
  });

  test("allow beats deny beats the defaults; a port narrows an entry; names and CIDRs match", async () => {
    const p = new DestinationPolicy({ allow: ["[::1]:5432", "10.0.0.0/8:5432", "*.db.internal"], deny: ["10.0.0.0/8", "evil.example"], lookup: async (h) => ({ "a.db.internal": ["169.254.1.1"], "evil.example": ["8.8.8.8"] })[h] ?? ["8.8.4.4"] });
    await expect(p.check("::1", 5432)).resolves.toEqual(["::1"]);
    await expect(p.check("::1", 5433)).rejects.toThrow(/loopback/);
    await expect(p.check("10.2.3.4", 5432)).resolves.toEqual(["10.2.3.4"]);
    await expect(p.check("10.2.3.4", 5433)).rejects.toThrow(/--deny-hosts 10\.0\.0\.0\/8/);
    await expect(p.check("a.db.internal", 1)).resolves.toEqual(["169.254.1.1"]);
    await expect(p.check("evil.example", 5432)).rejects.toThrow(/--deny-hosts evil\.example/);
    await expect(p.check("public.example", 5432)).resolves.toEqual(["8.8.4.4"]);
    await expect(p.check("0.0.0.0", 5432)).rejects.toThrow(/unspecified/);
  });

  test.each(["10.0.0.0/33", "host:99999", "bad host", "[::1/129]", "db:port"])("%s is no allow/deny entry", (entry) => {
    expect(() => new DestinationPolicy({ allow: [entry] })).toThrow(/is not a host, address or CIDR/);
  });
});
