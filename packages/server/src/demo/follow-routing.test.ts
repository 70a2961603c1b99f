// The demo's writer follows tenant-123's routing: the demo and a server run
// here (as `serve --demo` runs them), and tenant-123 moves from production_db
// (us-east-1) to replica_db (us-west-2) while the writer writes — by a
// failover with update_routing of a replication between them, and (on a
// demo of its own) by the spec's migration request as written. Its writes
// meet the fence (25006) on the old primary, wait for the routing, and go on
// on the new one; every order whose transaction it saw acknowledged, on
// either primary, is on the new primary. The log says once that it followed
// routing.
import { rmSync } from "node:fs";
import { startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startApp, type RunningApp } from "../app";
import { ConnectionGrantStore } from "../store/connection-grants";
import { ConnectionStore } from "../store/connections";
import { createPool, migrate } from "../store/db";
import { loadMasterKey, SecretBox } from "../store/secrets";
import { tempDataDir } from "../testing/bin-process";
import { issueToken, loadSigningKey } from "../transport/auth";
import { DEMO_SOURCE_ID, DEMO_TARGET_ID, startDemo, type Demo } from "./demo";
import type { DemoAck } from "./seed";

interface DemoServer {
  demo: Demo;
  app: RunningApp;
  lines: string[];
  acks: DemoAck[];
  rest(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close(): Promise<void>;
}

// The demo and a server, as `serve --demo` runs them (the writer quicker).
async function startDemoServer(): Promise<DemoServer> {
  const dir = tempDataDir();
  const lines: string[] = [];
  const acks: DemoAck[] = [];
  let control: Cluster | undefined;
  let db: pg.Pool | undefined;
  let demo: Demo | undefined;
  let app: RunningApp | undefined;
  const close = async () => {
    await demo?.writer.stop();
    await app?.close();
    await demo?.stop();
    await db?.end();
    await control?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    control = await startCluster();
    await control.createDatabase("controlplane");
    db = createPool(control.url("controlplane"));
    await migrate(db);
    const stores = { connections: new ConnectionStore(db, new SecretBox(loadMasterKey(dir))), grants: new ConnectionGrantStore(db) };
    demo = await startDemo(dir, db, stores, (line) => void lines.push(line), { writerIntervalMs: 50, onAcknowledged: (ack) => void acks.push(ack) });
    app = await startApp({ db, dataDir: dir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 200, allowHosts: demo.destinations, log: () => undefined });
    const token = await issueToken(loadSigningKey(dir), { roles: ["Admin"], subject: "test" });
    const url = app.urls.rest;
    const rest = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
    };
    return { demo, app, lines, acks, rest, close };
  } catch (e) {
    await close();
    throw e;
  }
}

const EAST = `${DEMO_SOURCE_ID}/production_db`;
const WEST = `${DEMO_TARGET_ID}/replica_db`;

// Every order the writer saw acknowledged for tenant-123, on either primary, is on us-west-2's replica_db once,
// and the acknowledgements moved from us-east-1 to us-west-2 once.
async function everyAcknowledgedOrderMoved(s: DemoServer) {
  const all = s.acks.filter((a) => a.tenantId === "tenant-123");
  const east = all.filter((a) => a.primary === EAST);
  const west = all.filter((a) => a.primary === WEST);
  expect(east.length).toBeGreaterThan(10);
  expect(west.length).toBeGreaterThan(10);
  expect(east.length + west.length).toBe(all.length);
  expect(all.findIndex((a) => a.primary === WEST)).toBe(east.length);
  const replica = new pg.Client({ connectionString: s.demo.west.url("replica_db") });
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
  const old = new pg.Client({ connectionString: s.demo.east.url("production_db") });
  await old.connect();
  try {
    await expect(old.query("INSERT INTO orders (user_id, amount) VALUES (1, 1)")).rejects.toMatchObject({ code: "25006" });
  } finally {
    await old.end();
  }
  // Said once: the fence met, and the routing followed.
  const followed = s.lines.filter((l) => l.startsWith("demo writer: tenant-123 follows its routing"));
  expect(followed).toHaveLength(1);
  expect(followed[0]).toMatch(new RegExp(`^demo writer: tenant-123 follows its routing to the new primary ${WEST} \\((us-west-2, )?routing version \\d+\\)$`));
  expect(s.lines.filter((l) => l.startsWith("demo writer: tenant-123's primary") && l.includes("refuses writes"))).toHaveLength(1);
  expect(s.lines.filter((l) => l.startsWith("demo writer: cannot write"))).toEqual([]);
}

// A demo and its server for the tests of one describe block: started before them, closed after them.
function demoServerPerBlock(): () => DemoServer {
  let s: DemoServer | undefined;
  beforeAll(async () => void (s = await startDemoServer()), 180_000);
  afterAll(async () => await s?.close(), 120_000);
  return () => s!;
}

describe("failover", () => {
  const demoServer = demoServerPerBlock();

  test("a failover of tenant-123 moves the demo writer to the new primary; no acknowledged write is lost", async () => {
    const s = demoServer();
    const { rest } = s;
    const tenant123 = () => s.acks.filter((a) => a.tenantId === "tenant-123");
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
    await s.demo.writer.stop();
    await everyAcknowledgedOrderMoved(s);
  }, 300_000);
});

describe("migration", () => {
  const demoServer = demoServerPerBlock();

  // Spec §2.4.1's request as written: the target is us-west-2's only connection, and its database the one
  // tenant-123 is granted there (replica_db).
  test("the spec's migration of tenant-123 moves the demo writer to us-west-2; no acknowledged write is lost", async () => {
    const s = demoServer();
    const { rest } = s;
    const tenant123 = () => s.acks.filter((a) => a.tenantId === "tenant-123");
    await waitFor(() => tenant123().length > 10, "the writer to write on us-east-1", 30_000);
    const accepted = await rest("POST", "/migrations", {
      tenant_id: "tenant-123",
      source_region: "us-east-1",
      target_region: "us-west-2",
      migration_config: { bulk_copy_parallelism: 8, cdc_lag_threshold_seconds: 1, cutover_strategy: "Automatic", cleanup_source: false },
    });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    expect(accepted.body).toMatchObject({ tenant_id: "tenant-123", source_region: "us-east-1", target_region: "us-west-2", status: "InProgress", current_phase: "BulkCopy" });
    let done: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
    await waitFor(async () => !["InProgress", "Pending"].includes((done = (await rest("GET", `/migrations/${accepted.body.id}`)).body).status), "the migration to end", 180_000);
    expect(done.status, JSON.stringify(done)).toBe("Completed");
    expect(done.phases.map((p: { phase: string; status: string }) => `${p.phase} ${p.status}`)).toEqual(["BulkCopy Completed", "CDCCatchup Completed", "Cutover Completed"]);
    const routing = (await rest("GET", "/tenants/tenant-123/routing")).body;
    expect(routing.primary).toMatchObject({ connection_id: DEMO_TARGET_ID, database: "replica_db", region: "us-west-2" });
    await waitFor(() => tenant123().filter((a) => a.primary === WEST).length > 10, "the writer to write on us-west-2", 30_000);
    await s.demo.writer.stop();
    await everyAcknowledgedOrderMoved(s);
  }, 300_000);
});
