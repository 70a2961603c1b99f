// The demo's writer follows tenant-123's routing: the demo and a server run
// here (as `serve --demo` runs them), tenant-123 is replicated from
// production_db (us-east-1) into replica_db (us-west-2) and failed over with
// update_routing while the writer writes. Its writes meet the fence (25006)
// on the old primary, wait for the routing, and go on on the new one; every
// order whose transaction it saw acknowledged, on either primary, is on the
// new primary. The log says once that it followed routing.
import { rmSync } from "node:fs";
import { startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startApp, type RunningApp } from "../app";
import { ConnectionGrantStore } from "../store/connection-grants";
import { ConnectionStore } from "../store/connections";
import { createPool, migrate } from "../store/db";
import { loadMasterKey, SecretBox } from "../store/secrets";
import { tempDataDir } from "../testing/bin-process";
import { issueToken, loadSigningKey } from "../transport/auth";
import { DEMO_SOURCE_ID, DEMO_TARGET_ID, startDemo, type Demo } from "./demo";
import type { DemoAck } from "./seed";

const dir = tempDataDir();
let control: Cluster | undefined;
let db: pg.Pool | undefined;
let demo: Demo | undefined;
let app: RunningApp | undefined;
let token = "";
const lines: string[] = [];
const acks: DemoAck[] = [];

beforeAll(async () => {
  control = await startCluster();
  await control.createDatabase("controlplane");
  db = createPool(control.url("controlplane"));
  await migrate(db);
  const stores = { connections: new ConnectionStore(db, new SecretBox(loadMasterKey(dir))), grants: new ConnectionGrantStore(db) };
  demo = await startDemo(dir, db, stores, (line) => void lines.push(line), { writerIntervalMs: 50, onAcknowledged: (ack) => void acks.push(ack) });
  app = await startApp({ db, dataDir: dir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 200, allowHosts: demo.destinations, log: () => undefined });
  token = await issueToken(loadSigningKey(dir), { roles: ["Admin"], subject: "test" });
}, 180_000);

afterAll(async () => {
  await demo?.writer.stop();
  await app?.close();
  await demo?.stop();
  await db?.end();
  await control?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

async function rest(method: string, path: string, body?: unknown) {
  const res = await fetch(`${app!.urls.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
}

const EAST = `${DEMO_SOURCE_ID}/production_db`;
const WEST = `${DEMO_TARGET_ID}/replica_db`;
const tenant123 = () => acks.filter((a) => a.tenantId === "tenant-123");

test("a failover of tenant-123 moves the demo writer to the new primary; no acknowledged write is lost", async () => {
  const created = await rest("POST", "/replications", {
    tenant_id: "tenant-123",
    source: { connection_id: DEMO_SOURCE_ID, database: "production_db" },
    target: { connection_id: DEMO_TARGET_ID, database: "replica_db" },
    config: { qos_tier: "Premium", table_filter: ["users.*", "orders.*", "products.*"] },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id = created.body.id as string;
  expect((await rest("POST", `/replications/${id}/start`, {})).status).toBe(200);
  await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.status === "Streaming", "streaming", 90_000);
  const before = tenant123().length;
  await waitFor(() => tenant123().length > before + 10, "the writer to write on us-east-1", 30_000);

  const triggered = await rest("POST", `/replications/${id}/failover`, { reason: "demo writer follows routing", update_routing: true });
  expect(triggered.status, JSON.stringify(triggered.body)).toBe(202);
  let done: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  await waitFor(async () => (done = (await rest("GET", `/failovers/${triggered.body.failover_id}`)).body).status !== "InProgress", "the failover to end", 120_000);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  await waitFor(() => tenant123().filter((a) => a.primary === WEST).length > 10, "the writer to write on us-west-2", 30_000);
  await demo!.writer.stop();

  // Acknowledged on both sides, then only on the new primary.
  const all = tenant123();
  const east = all.filter((a) => a.primary === EAST);
  const west = all.filter((a) => a.primary === WEST);
  expect(east.length).toBeGreaterThan(10);
  expect(west.length).toBeGreaterThan(10);
  expect(east.length + west.length).toBe(all.length);
  expect(all.findIndex((a) => a.primary === WEST)).toBe(east.length);

  // Every acknowledged order is on the new primary.
  const replica = new pg.Client({ connectionString: demo!.west.url("replica_db") });
  await replica.connect();
  try {
    const ids = all.map((a) => a.orderId!);
    const { rows } = await replica.query<{ n: string }>("SELECT count(*) AS n FROM orders WHERE id = ANY($1::bigint[])", [ids]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(Number(rows[0]!.n), `acknowledged ${ids.length} orders (${east.length} on us-east-1, ${west.length} on us-west-2)`).toBe(ids.length);
  } finally {
    await replica.end();
  }
  // The old primary refuses the tenant's writes (its fence stays up).
  const old = new pg.Client({ connectionString: demo!.east.url("production_db") });
  await old.connect();
  try {
    await expect(old.query("INSERT INTO orders (user_id, amount) VALUES (1, 1)")).rejects.toMatchObject({ code: "25006" });
  } finally {
    await old.end();
  }
  // Said once: the fence met, and the routing followed.
  const followed = lines.filter((l) => l.startsWith("demo writer: tenant-123 follows its routing"));
  expect(followed).toHaveLength(1);
  expect(followed[0]).toMatch(new RegExp(`^demo writer: tenant-123 follows its routing to the new primary ${WEST} \\((us-west-2, )?routing version \\d+\\)$`));
  expect(lines.filter((l) => l.startsWith("demo writer: tenant-123's primary") && l.includes("refuses writes"))).toHaveLength(1);
  expect(lines.filter((l) => l.startsWith("demo writer: cannot write"))).toEqual([]);
}, 300_000);
