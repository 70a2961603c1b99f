// The probes the server runs against a tenant's database, on a real server.
import { afterAll, beforeAll, expect, test } from "vitest";
import { freePort, startCluster, type Cluster } from "../testing/clusters";
import { seedTenant } from "../testing/tenant";
import { measureCopySpeed, probeConnection, probeDatabase } from "./probe";

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createDatabase("tenant_db");
  const db = await cluster.connect("tenant_db");
  try {
    await seedTenant(db, 500);
    await db.query("CREATE TABLE empty_table (id int)");
  } finally {
    await db.end();
  }
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

const config = (over: Record<string, unknown> = {}) => ({
  host: cluster.host,
  port: cluster.port,
  user: cluster.user,
  password: cluster.password,
  database: "tenant_db",
  ...over,
});

test("a reachable database with good credentials passes", async () => {
  await expect(probeConnection(config())).resolves.toBeUndefined();
});

test("bad credentials, a missing database and a closed port fail with the driver's message", async () => {
  await expect(probeConnection(config({ password: "wrong" }))).rejects.toThrow(/password authentication failed/);
  await expect(probeConnection(config({ database: "no_such_db" }))).rejects.toThrow(/database "no_such_db" does not exist/);
  await expect(probeConnection(config({ port: await freePort(), connectionTimeoutMillis: 5000 }))).rejects.toThrow(/ECONNREFUSED/);
});

test("the copy speed is measured by reading the table", async () => {
  expect(await measureCopySpeed(config(), { schema: "public", table: "orders" }, 20_000)).toBeGreaterThan(0);
  // Nothing read, nothing measured.
  expect(await measureCopySpeed(config(), { schema: "public", table: "empty_table" }, 20_000)).toBe(0);
  await expect(measureCopySpeed(config(), { schema: "public", table: "no_such_table" }, 10)).rejects.toThrow(/does not exist/);
});

test("a database probe tells a missing database from a failure, and one cluster from another", async () => {
  const probe = await probeDatabase(config());
  expect(probe).toMatchObject({ exists: true, systemIdentifier: expect.stringMatching(/^\d+$/) });
  // Every database of a cluster shares its identifier.
  expect(await probeDatabase(config({ database: "postgres" }))).toEqual(probe);
  expect(await probeDatabase(config({ database: "no_such_db" }))).toEqual({ exists: false });
  await expect(probeDatabase(config({ password: "wrong" }))).rejects.toThrow(/password authentication failed/);
  const other = await startCluster();
  try {
    const there = await probeDatabase({ host: other.host, port: other.port, user: other.user, password: other.password, database: "postgres" });
    expect(there.exists && probe.exists && there.systemIdentifier !== probe.systemIdentifier).toBe(true);
  } finally {
    await other.stop();
  }
}, 60_000);
