// The fault suite: `kill -9` of the server process (the real bin, with its
// embedded control plane) in the initial sync, while streaming under a write
// load, and in the middle of applying a large transaction — each time
// followed by the plain start command on the same data directory. The
// replication resumes from its checkpoint by itself; the API shows the
// figures of the dead owner as not live until the lease passes to the new
// process; totals never fall back; nothing is lost and nothing applied twice.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { seedTenant, startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { postmastersUnder, spawnServer, tempDataDir, type ServerProcess } from "../../src/testing/bin-process";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { EAST, WEST, type Answer } from "../../src/testing/world";
import { events, expectConverged, expectStatusChainConsistent, replication, startLoad, waitForStatus } from "./harness";

const dir = tempDataDir();
let east: Cluster;
let west: Cluster;
let server: ServerProcess | undefined;
let token: string;
let id: string;

beforeAll(async () => {
  [east, west] = await Promise.all([startCluster(), startCluster()]);
  await Promise.all([east.createDatabase("production_db"), west.createDatabase("replica_db")]);
  const db = await east.connect("production_db");
  await seedTenant(db, 500);
  // Enough rows that the initial sync is still copying when the server is killed.
  await db.query("INSERT INTO orders (user_id, amount, status) SELECT i % 500, i % 1000, 'seed' FROM generate_series(1, 400000) i");
  await db.end();
  await start();
  token = await issueToken(loadSigningKey(dir), { roles: ["Admin"], subject: "faults" });
  for (const [connection, cluster, database] of [[EAST, east, "production_db"], [WEST, west, "replica_db"]] as const) {
    const res = await rest("POST", "/connections", {
      connection_id: connection, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database, sslmode: "disable",
      owner_tenant_id: "tenant-123", // its own, for the replication on its behalf
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
}, 180_000);

afterAll(async () => {
  if (server) {
    server.kill("SIGTERM");
    await server.exited;
  }
  await waitFor(() => postmastersUnder(dir).length === 0, "the control plane to stop", 30_000).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  await Promise.all([east?.stop(), west?.stop()]);
}, 60_000);

// The README's start command, on the same data directory every time.
async function start(): Promise<void> {
  // The clusters listen on loopback, which the destination policy denies unless allowed.
  const allow = `${east.host}:${east.port},${west.host}:${west.port}`;
  // The test polls faster than a tier allows (10 a second, Standard): its principal gets a bucket of its own.
  server = await spawnServer(["serve", "--data-dir", dir, "--port", "0", "--grpc-port", "0", "--allow-hosts", allow, "--rate-limit", "principal:faults=600000/10000"]);
  await server.ready();
}

async function kill(): Promise<void> {
  server!.kill("SIGKILL");
  await server!.exited;
}

async function rest(method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${server!.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

// After a restart: the dead owner's figures are not live until the new process holds the lease and streams.
async function resumed(before: { statistics: { total_rows_replicated: string | number } }): Promise<void> {
  await waitFor(async () => {
    const r = await replication(rest, id);
    return r.status === "Streaming" && r.health === "Healthy";
  }, "the restarted server to stream again", 90_000);
  expect(Number((await replication(rest, id)).statistics.total_rows_replicated)).toBeGreaterThanOrEqual(Number(before.statistics.total_rows_replicated));
}

// The embedded control plane, for the events it recorded (its port is the fourth line of postmaster.pid).
const control = {
  async query(sql: string, params: unknown[]) {
    const port = Number(readFileSync(join(dir, "controlplane", "data", "postmaster.pid"), "utf8").split("\n")[3]);
    const password = readFileSync(join(dir, "controlplane.password"), "utf8").trim();
    const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password, database: "postgres" });
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  },
};

test("killed in the initial sync: the copy starts afresh, nothing duplicated", async () => {
  const created = await rest("POST", "/replications", {
    tenant_id: "tenant-123",
    source: { connection_id: EAST, database: "production_db" },
    target: { connection_id: WEST, database: "replica_db" },
    config: { qos_tier: "Premium", table_filter: ["users.*", "orders.*", "products.*"] },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  id = created.body.id;
  await rest("POST", `/replications/${id}/start`, { initial_sync_parallelism: 1 });
  await waitForStatus(rest, id, "Syncing", 60_000);
  const before = await replication(rest, id);
  await kill();
  await start();
  // Until the dead server's lease runs out the replication has no owner: its figures soon stop being called live.
  await waitFor(async () => (await replication(rest, id)).health === "Unknown", "health Unknown", 15_000);
  await resumed(before);
  await expectConverged(rest, id, east, west, "replica_db");
}, 180_000);

test("killed while streaming under a write load", async () => {
  const load = startLoad(east, "production_db");
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const before = await replication(rest, id);
    await kill();
    await start();
    await resumed(before);
  } finally {
    await load.stop();
  }
  await expectConverged(rest, id, east, west, "replica_db");
}, 180_000);

test("killed in the middle of applying a large transaction", async () => {
  const db = await east.connect("production_db");
  const replica = await west.connect("replica_db");
  try {
    const before = await replication(rest, id);
    await db.query("INSERT INTO orders (user_id, amount, status) SELECT i % 500, i % 1000, 'large' FROM generate_series(1, 300000) i");
    // Applied in pieces of one target transaction: kill the server while it is open.
    await waitFor(async () => {
      const { rowCount } = await replica.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = 'replica_db' AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
            AND now() - xact_start > interval '200 milliseconds'`,
      );
      return (rowCount ?? 0) > 0;
    }, "the large transaction to be applying", 60_000);
    await kill();
    expect((await replica.query("SELECT count(*)::int AS n FROM orders WHERE status = 'large'")).rows[0].n).toBe(0);
    await start();
    await resumed(before);
  } finally {
    await Promise.all([db.end(), replica.end()]);
  }
  const after = await expectConverged(rest, id, east, west, "replica_db");
  expect(after.statistics.conflicts_detected).toBe(0);
  expectStatusChainConsistent((await events(control, id)));
}, 180_000);
