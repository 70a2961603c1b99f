// The server end to end, on real listeners and three real PostgreSQL
// clusters (control plane, us-east-1, us-west-2): the spec's §2.1.1 request
// really replicates, REST and Connect agree, and bad input gets the §6
// envelope with a request id.
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ApiErrorSchema, ReplicationService, ReplicationStatus } from "@heliosdb/replication-proto";
import { seedTenant, startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startApp, type RunningApp } from "./app";
import { createPool } from "./store/db";
import { issueToken, loadSigningKey } from "./transport/auth";

const EAST = "550e8400-e29b-41d4-a716-446655440001";
const WEST = "550e8400-e29b-41d4-a716-446655440002";

let control: Cluster;
let east: Cluster;
let west: Cluster;
let pool: pg.Pool;
let app: RunningApp;
let token: string;
let source: pg.Client;
let replica: pg.Client;
let dataDir: string;

beforeAll(async () => {
  [control, east, west] = await Promise.all([startCluster(), startCluster(), startCluster()]);
  await control.createDatabase("controlplane");
  await east.createDatabase("production_db");
  await west.createDatabase("replica_db");
  source = await east.connect("production_db");
  await seedTenant(source, 3000);
  replica = await west.connect("replica_db");
  pool = createPool(control.url("controlplane"));
  dataDir = mkdtempSync(join(tmpdir(), "heliosdb-server-"));
  app = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, allowHosts: allowHosts(), tickMs: 200, walRetentionWarningBytes: 1_000_000, log: () => undefined });
  token = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "test" });
  for (const [id, cluster, region, database] of [[EAST, east, "us-east-1", "production_db"], [WEST, west, "us-west-2", "replica_db"]] as const) {
    const res = await rest("POST", "/connections", {
      connection_id: id,
      host: cluster.host,
      port: cluster.port,
      user: cluster.user,
      password: cluster.password,
      database,
      sslmode: "disable",
      region,
      // tenant-123's own, for the spec's requests on its behalf.
      owner_tenant_id: "tenant-123",
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
}, 180_000);

afterAll(async () => {
  await app?.close();
  await pool?.end();
  await Promise.all([source?.end(), replica?.end()]);
  await Promise.all([control?.stop(), east?.stop(), west?.stop()]);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

// The clusters listen on loopback, which the destination policy denies unless allowed: their two ports only.
const allowHosts = () => [`${east.host}:${east.port}`, `${west.host}:${west.port}`];

async function rest(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.urls.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

// Spec §2.1.1, as written.
const CREATE = {
  tenant_id: "tenant-123",
  source: { connection_id: EAST, database: "production_db", schema: "public" },
  target: { connection_id: WEST, database: "replica_db", schema: "public" },
  config: {
    qos_tier: "Premium",
    max_lag_seconds: 5,
    priority: 90,
    table_filter: ["users.*", "orders.*", "products.*"],
    row_filter: { enabled: false },
    transforms: [{ type: "AnonymizePII", config: { columns: ["email", "phone", "ssn"], method: "Hash" } }],
    compression: { enabled: true, level: "Medium" },
    encryption: { enabled: true, algorithm: "AES256GCM" },
  },
};

describe("the §2.1.1 replication, end to end", () => {
  let id: string;

  test("POST /v1/replications answers 201 in the spec's shape, with measured estimates", async () => {
    const res = await rest("POST", "/replications", CREATE);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ tenant_id: "tenant-123", status: "Initializing", source: CREATE.source, target: CREATE.target, config: CREATE.config });
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.estimated_data_size_gb).toBeGreaterThan(0);
    expect(res.body.estimated_initial_sync_duration_hours).toBeGreaterThan(0);
    expect(res.headers.get("x-request-id")).toMatch(/^req-/);
    id = res.body.id;
  });

  test("a second one for the same tenant, source and target is a 409", async () => {
    const res = await rest("POST", "/replications", CREATE);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("CONFLICT");
  });

  test("start copies production_db into replica_db with email, phone and ssn hashed, then streams", async () => {
    const start = await rest("POST", `/replications/${id}/start`, { from_checkpoint: "auto", initial_sync_parallelism: 4 });
    expect(start.status, JSON.stringify(start.body)).toBe(200);
    expect(start.body).toMatchObject({ id, status: "Initializing", message: "Replication starting. Initial sync in progress." });
    expect(Date.parse(start.body.estimated_completion)).toBeGreaterThan(Date.now() - 1000);
    await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
    const { rows } = await replica.query("SELECT count(*)::int AS n, bool_and(email ~ '^[0-9a-f]{64}$') AS hashed FROM users");
    expect(rows[0]).toEqual({ n: 3000, hashed: true });
    // A hundred rows in one transaction, as writes come: a batch of one row is shipped larger than it is
    // once the cipher's nonce and tag are added, and the ratio reports exactly that (raw over shipped bytes).
    await source.query(
      "INSERT INTO users (name, email) SELECT CASE WHEN g = 1 THEN 'arrives' ELSE 'late ' || g END, 'late' || g || '@example.com' FROM generate_series(1, 100) g",
    );
    await waitFor(async () => (await replica.query("SELECT 1 FROM users WHERE name = 'arrives'")).rowCount === 1, "the new row on the target");
  }, 90_000);

  test("GET shows observed state and statistics", async () => {
    // As its owner stored them at its latest pass (observed_at): the late rows' batch within a pass or two.
    await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.statistics.avg_compression_ratio > 1, "the late rows' batch observed");
    const res = await rest("GET", `/replications/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: "Streaming", health: "Healthy" });
    expect(res.body.current_state.last_checkpoint.lsn).toBeGreaterThan(0);
    expect(res.body.statistics.total_rows_replicated).toBeGreaterThan(3000);
    expect(res.body.statistics.avg_compression_ratio).toBeGreaterThan(1);
  });

  test("REST, Connect, gRPC-web and gRPC return the same replication", async () => {
    const viaRest = (await rest("GET", `/replications/${id}`)).body;
    const headers = { authorization: `Bearer ${token}` };
    for (const transport of [
      createConnectTransport({ baseUrl: `http://127.0.0.1:${app.ports.http}`, httpVersion: "1.1" }),
      createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${app.ports.http}`, httpVersion: "1.1" }),
      createConnectTransport({ baseUrl: `http://127.0.0.1:${app.ports.http}`, httpVersion: "2" }),
      createGrpcTransport({ baseUrl: app.urls.grpc }),
    ]) {
      const replication = await createClient(ReplicationService, transport).getReplication({ id }, { headers });
      expect(replication.id).toBe(viaRest.id);
      expect(replication.tenantId).toBe("tenant-123");
      expect(replication.status).toBe(ReplicationStatus.STREAMING);
      expect(replication.config?.tableFilter).toEqual(CREATE.config.table_filter);
    }
  });

  test("list filters and paginates in the spec's shape", async () => {
    const res = await rest("GET", "/replications?status=Streaming&qos_tier=Premium&page=1");
    expect(res.status).toBe(200);
    expect(res.body.pagination).toEqual({ page: 1, page_size: 50, total_pages: 1, total_items: 1 });
    expect(res.body.data[0]).toMatchObject({ id, tenant_id: "tenant-123", status: "Streaming", qos_tier: "Premium" });
    const none = await rest("GET", "/replications?qos_tier=BestEffort");
    expect(none.body.pagination.total_items).toBe(0);
  });

  test("the spec's §2.1.4 PATCH (a new table_filter) answers in §2 shape and re-copies under the new filter", async () => {
    const body = { config: { qos_tier: "Premium", max_lag_seconds: 3, priority: 95, table_filter: ["users.*", "orders.*", "products.*", "analytics.*"] } };
    const res = await rest("PATCH", `/replications/${id}`, body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id, tenant_id: "tenant-123", config: body.config });
    expect(Date.parse(res.body.updated_at)).toBeGreaterThan(0);
    await source.query("CREATE TABLE analytics (id int PRIMARY KEY, metric text)");
    await rest("PATCH", `/replications/${id}`, { config: { table_filter: body.config.table_filter } });
    await source.query("INSERT INTO analytics VALUES (1, 'page_views')");
    await waitFor(async () => (await replica.query("SELECT 1 FROM pg_tables WHERE tablename = 'analytics'")).rowCount === 1
      && (await replica.query("SELECT metric FROM analytics")).rows[0]?.metric === "page_views", "the new table on the target", 60_000);
    await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming again", 60_000);
  }, 90_000);

  test("PATCH changes exactly the fields in the body", async () => {
    const res = await rest("PATCH", `/replications/${id}`, { config: { max_lag_seconds: 3, priority: 95 } });
    expect(res.body.config.table_filter).toContain("analytics.*");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.config).toMatchObject({ qos_tier: "Premium", max_lag_seconds: 3, priority: 95, compression: CREATE.config.compression });
    // Source and target are not changed by an update (spec §2.1.4: limited fields): a migration moves a tenant.
    const refused = await rest("PATCH", `/replications/${id}`, { source: { connection_id: WEST } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: "VALIDATION_ERROR", request_id: refused.headers.get("x-request-id") });
    expect(refused.body.error.details.violations).toEqual([{ field: "source", description: expect.stringMatching(/cannot be changed by update.*migration/) }]);
    const both = await rest("PATCH", `/replications/${id}`, { config: { priority: 50 }, source: { connection_id: WEST }, target: { connection_id: EAST } });
    expect(both.body.error.code).toBe("VALIDATION_ERROR");
    expect(both.body.error.details.violations.map((v: { field: string }) => v.field)).toEqual(["source", "target"]);
    expect((await rest("GET", `/replications/${id}`)).body.config.priority).toBe(95);
    const unknown = await rest("PATCH", `/replications/${id}`, { colour: "red" });
    expect(unknown.body.error.code).toBe("INVALID_REQUEST");
  });

  test("pause, then an illegal transition names both states, then stop", async () => {
    const paused = await rest("POST", `/replications/${id}/pause`);
    expect(paused.body).toMatchObject({ id, status: "Paused" });
    expect(paused.body.last_checkpoint.lsn).toBeGreaterThan(0);
    // The paused slot keeps the source's WAL: past the threshold, an event says so.
    await source.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'while paused' FROM generate_series(1, 30000) i");
    await waitFor(async () => (await pool.query("SELECT 1 FROM events WHERE replication_id = $1 AND event_type = 'WalRetentionHigh'", [id])).rowCount === 1, "the WAL retention warning");
    const stopped = await rest("POST", `/replications/${id}/stop`);
    expect(stopped.body).toMatchObject({ id, status: "Stopped" });
    expect(stopped.body.final_statistics.total_rows_replicated).toBeGreaterThan(3000);
    const illegal = await rest("POST", `/replications/${id}/pause`);
    expect(illegal.status).toBe(409);
    expect(illegal.body.error).toMatchObject({ code: "CONFLICT", details: { current_status: "Stopped", requested: "pause" } });
  }, 60_000);

  test("DELETE answers 204 and the replication is gone", async () => {
    const res = await rest("DELETE", `/replications/${id}?cleanup_target=false`);
    expect(res.status).toBe(204);
    expect((await rest("GET", `/replications/${id}`)).status).toBe(404);
  });
});

describe("health, readiness and what is not there yet", () => {
  test("GET /v1/health and /v1/ready answer in the §2.6 shapes, without a token", async () => {
    const health = await fetch(`${app.urls.rest}/health`);
    expect(health.status).toBe(200);
    const body = await health.json();
    expect(body).toMatchObject({ status: "Healthy", version: expect.any(String), checks: { database: "Healthy", message_queue: "Healthy", worker_pool: "Healthy" } });
    expect(body.uptime_seconds).toBeGreaterThanOrEqual(0);
    expect(await (await fetch(`${app.urls.rest}/ready`)).json()).toEqual({ ready: true });
  });

  test("the WebSocket path without an upgrade is a 400 that says to upgrade", async () => {
    const res = await rest("GET", "/ws");
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/open it with an Upgrade: websocket request/);
  });

  test("a WebSocket upgrade to /v1/ws goes through the interceptor chain: 401 without a token, the handshake with one (spec §4.1's token=)", async () => {
    // A raw handshake request (test/observability speaks the WebSocket API itself).
    const upgrade = (path: string) =>
      new Promise<{ status: number; body: { error: { code: string; request_id: string } } }>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: app.ports.http, path, headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" } });
        req.on("error", reject).on("upgrade", (res, socket) => {
          socket.destroy();
          resolve({ status: res.statusCode!, body: { error: { code: "", request_id: "" } } });
        });
        req.on("response", async (res) => {
          const chunks: Buffer[] = [];
          for await (const c of res) chunks.push(c as Buffer);
          resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) });
        });
        req.end();
      });
    const anonymous = await upgrade("/v1/ws");
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toMatchObject({ code: "UNAUTHORIZED", request_id: expect.stringMatching(/^req-/) });
    expect((await upgrade(`/v1/ws?token=${token}`)).status).toBe(101);
  });

  test("server-streaming RPCs over gRPC go through the same chain: UNAUTHENTICATED without a token, then the handler's NOT_FOUND (no such replication) with its §6 detail", async () => {
    const client = createClient(ReplicationService, createGrpcTransport({ baseUrl: app.urls.grpc }));
    const first = async (headers: Record<string, string>) => {
      try {
        for await (const _ of client.streamReplicationEvents({ replicationId: "650e8400-e29b-41d4-a716-446655440003" }, { headers })) return undefined;
      } catch (e) {
        return e as ConnectError;
      }
    };
    const anonymous = await first({});
    expect(anonymous?.code).toBe(Code.Unauthenticated);
    expect(anonymous?.findDetails(ApiErrorSchema)[0]?.code).toBe("UNAUTHORIZED");
    const authenticated = await first({ authorization: `Bearer ${token}` });
    expect(authenticated?.code).toBe(Code.NotFound);
    expect(authenticated?.findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "NOT_FOUND", requestId: expect.stringMatching(/^req-/) });
  });
});

describe("two servers on one control plane", () => {
  test("never run the same replication twice: one holds the lease, the other waits", async () => {
    await west.createDatabase("replica_two");
    const created = await rest("POST", "/replications", { ...CREATE, target: { connection_id: WEST, database: "replica_two" }, config: { table_filter: ["products.*"] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    const second = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, allowHosts: allowHosts(), tickMs: 100, log: () => undefined });
    try {
      await rest("POST", `/replications/${id}/start`);
      await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
      // Many passes of both servers later, exactly one of them runs it.
      await new Promise((r) => setTimeout(r, 1500));
      const owners = [app, second].filter((a) => a.orchestrator.figures(id) !== undefined);
      expect(owners).toHaveLength(1);
      const leases = await pool.query("SELECT owner FROM leases WHERE replication_id = $1", [id]);
      expect(leases.rows.map((l) => l.owner)).toEqual([owners[0]!.orchestrator.nodeId]);
      await rest("POST", `/replications/${id}/stop`);
    } finally {
      await second.close();
    }
  }, 90_000);
});

describe("a replication read through one server, changed through another", () => {
  // Another server process on the same control plane: its own pool, its own LISTEN session. Rate limits on (a bucket
  // never empty here): its calls' rate-limit decisions run on that session and are the barrier of their GETs.
  let otherPool: pg.Pool;
  let other: RunningApp;
  let id: string;
  const viaOther = async (path: string) => {
    const res = await fetch(`${other.urls.rest}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.json() };
  };
  const listeners = () => pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'heliosdb-replication-cache'");

  beforeAll(async () => {
    otherPool = createPool(control.url("controlplane"));
    const rateLimits = { tiers: { Standard: { perMinute: 1_000_000, burst: 1_000_000 } } };
    other = await startApp({ db: otherPool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, allowHosts: allowHosts(), tickMs: 200, rateLimits, log: () => undefined });
    await west.createDatabase("replica_cache");
    const created = await rest("POST", "/replications", { ...CREATE, target: { connection_id: WEST, database: "replica_cache" }, config: { table_filter: ["products.*"], priority: 10 } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    id = created.body.id;
  }, 60_000);

  afterAll(async () => {
    await pool.query("ALTER TABLE replications ENABLE TRIGGER replications_changed");
    await other?.close();
    await otherPool?.end();
  }, 60_000);

  test("PATCH, start, pause, stop and DELETE through one server show in the very next GET on the other", async () => {
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(10);
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(10);
    expect((await rest("PATCH", `/replications/${id}`, { config: { priority: 11 } })).status).toBe(200);
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(11);
    expect((await rest("POST", `/replications/${id}/start`)).status).toBe(200);
    expect((await viaOther(`/replications/${id}`)).body.status).not.toBe("Paused");
    await waitFor(async () => (await viaOther(`/replications/${id}`)).body.status === "Streaming", "Streaming, seen through the other server", 60_000);
    expect((await rest("POST", `/replications/${id}/pause`)).status).toBe(200);
    expect((await viaOther(`/replications/${id}`)).body.status).toBe("Paused");
    expect((await rest("POST", `/replications/${id}/stop`)).status).toBe(200);
    expect((await viaOther(`/replications/${id}`)).body.status).toBe("Stopped");
    expect((await rest("DELETE", `/replications/${id}`)).status).toBe(204);
    expect((await viaOther(`/replications/${id}`)).status).toBe(404);
  }, 90_000);

  test("rows come from memory only while the LISTEN session is up: without it every GET reads the database", async () => {
    const created = await rest("POST", "/replications", { ...CREATE, target: { connection_id: WEST, database: "replica_cache" }, config: { table_filter: ["products.*"], priority: 20 } });
    const id = created.body.id as string;
    // Once the insert's own notification is in (a read that overlaps a notification is not kept), a GET keeps the row.
    await new Promise((r) => setTimeout(r, 200));
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(20);
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(20);
    // A change nobody is told of (the trigger off): the other server still answers from memory...
    await pool.query("ALTER TABLE replications DISABLE TRIGGER replications_changed");
    await pool.query("UPDATE replications SET config = jsonb_set(config, '{priority}', '21') WHERE id = $1", [id]);
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(20);
    // ...until its LISTEN session is gone: then it cannot know what changed, and reads the database.
    await listeners();
    await waitFor(async () => (await viaOther(`/replications/${id}`)).body.config.priority === 21, "the GET to read the database");
    await pool.query("UPDATE replications SET config = jsonb_set(config, '{priority}', '22') WHERE id = $1", [id]);
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(22);
    // Back with the trigger and a new session: changes show at once again.
    await pool.query("ALTER TABLE replications ENABLE TRIGGER replications_changed");
    await waitFor(async () => (await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'heliosdb-replication-cache'")).rows[0].n === 2, "both servers listening again");
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(22);
    expect((await rest("PATCH", `/replications/${id}`, { config: { priority: 23 } })).status).toBe(200);
    expect((await viaOther(`/replications/${id}`)).body.config.priority).toBe(23);
    expect((await rest("DELETE", `/replications/${id}`)).status).toBe(204);
    expect((await viaOther(`/replications/${id}`)).status).toBe(404);
  }, 60_000);
});

describe("tokens are checked on every request", () => {
  test("a token that worked is refused once it expires, and a changed one at once", async () => {
    // Expired 28 s ago: still inside the 30 s of clock skew for about 2 s.
    const exp = Math.floor(Date.now() / 1000) - 28;
    const short = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], ttl: "28s ago" });
    expect((await rest("GET", "/replications", undefined, { authorization: `Bearer ${short}` })).status).toBe(200);
    const [header, payload, signature] = short.split(".") as [string, string, string];
    const claims = { ...JSON.parse(Buffer.from(payload, "base64url").toString()), exp: exp + 86_400 };
    const extended = [header, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join(".");
    expect((await rest("GET", "/replications", undefined, { authorization: `Bearer ${extended}` })).status).toBe(401);
    await new Promise((r) => setTimeout(r, (exp + 30) * 1000 - Date.now() + 50));
    const expired = await rest("GET", "/replications", undefined, { authorization: `Bearer ${short}` });
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toMatch(/exp/);
  }, 10_000);
});

describe("unary gRPC, answered straight from HTTP/2", () => {
  const client = (options: Partial<Parameters<typeof createGrpcTransport>[0]> = {}) =>
    createClient(ReplicationService, createGrpcTransport({ baseUrl: app.urls.grpc, ...options }));
  const headers = () => ({ authorization: `Bearer ${token}` });

  test("an error carries the §6 detail and the request id, in the detail and as metadata", async () => {
    const missing = "550e8400-e29b-41d4-a716-446655440123";
    const error = await client().getReplication({ id: missing }, { headers: { ...headers(), "x-request-id": "grpc-trace-7" } }).catch((e) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.code).toBe(Code.NotFound);
    expect(error.findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "NOT_FOUND", requestId: "grpc-trace-7", details: { replication_id: missing } });
    expect(error.metadata.get("x-request-id")).toBe("grpc-trace-7");
    const invalid = await client().getReplication({ id: "not-a-uuid" }, { headers: headers() }).catch((e) => e);
    expect(invalid.code).toBe(Code.InvalidArgument);
    expect((await client().getReplication({ id: missing }).catch((e) => e)).code).toBe(Code.Unauthenticated);
  });

  test("a deadline, a compressed request and a client that accepts gzip are served like any other call", async () => {
    await west.createDatabase("replica_grpc");
    const created = await rest("POST", "/replications", { ...CREATE, target: { connection_id: WEST, database: "replica_grpc" }, config: { table_filter: ["products.*"] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    try {
      expect((await client().getReplication({ id }, { headers: headers(), timeoutMs: 5000 })).id).toBe(id);
      // Compressed requests are left to Connect.
      expect((await client({ sendCompression: compressionGzip, compressMinBytes: 1 }).getReplication({ id }, { headers: headers() })).id).toBe(id);
      // Answers from 1 KiB would be compressed for it.
      const list = await client({ acceptCompression: [compressionGzip] }).listReplications({}, { headers: headers() });
      expect(list.replications.map((r) => r.id)).toContain(id);
    } finally {
      await rest("DELETE", `/replications/${id}`);
    }
  });
});

describe("a restart keeps replications running", () => {
  test("a new server process on the same control plane resumes from the checkpoint, nothing lost, nothing twice; a paused one is watched again", async () => {
    await west.createDatabase("replica_restart");
    const created = await rest("POST", "/replications", { ...CREATE, target: { connection_id: WEST, database: "replica_restart" }, config: { qos_tier: "Standard", table_filter: ["orders.*"] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    await rest("POST", `/replications/${id}/start`);
    await waitFor(async () => (await rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
    await app.close();
    // A closed server leaves no session behind on the source (walsenders included).
    await waitFor(async () => {
      const { rows } = await source.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'production_db' AND pid <> pg_backend_pid() AND backend_type IN ('client backend', 'walsender')",
      );
      return rows[0].n === 0;
    }, "the server's sessions on the source to end").catch(async (e) => {
      const { rows } = await source.query("SELECT application_name, backend_type, state, query FROM pg_stat_activity WHERE datname = 'production_db' AND pid <> pg_backend_pid()");
      throw new Error(`${e.message}: ${JSON.stringify(rows)}`);
    });
    // Written while no server runs: the slot keeps it.
    await source.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'while down' FROM generate_series(1, 500) i");
    app = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, allowHosts: allowHosts(), tickMs: 200, log: () => undefined });
    const target = await west.connect("replica_restart");
    try {
      await waitFor(async () => (await target.query("SELECT count(*)::int AS n FROM orders WHERE status = 'while down'")).rows[0].n === 500, "the rows written while down", 60_000);
      const sourceCount = (await source.query("SELECT count(*)::int AS n FROM orders")).rows[0].n;
      await waitFor(async () => (await target.query("SELECT count(*)::int AS n FROM orders")).rows[0].n === sourceCount, "equal counts");
      const after = await rest("GET", `/replications/${id}`);
      expect(after.body.status).toBe("Streaming");
      expect(after.body.statistics.conflicts_detected).toBe(0);
    } finally {
      await target.end();
    }
    // Paused, then its server restarts: the new process watches the slot's retained WAL.
    expect((await rest("POST", `/replications/${id}/pause`)).body.status).toBe("Paused");
    await app.close();
    const warnings = async () => (await pool.query("SELECT 1 FROM events WHERE replication_id = $1 AND event_type = 'WalRetentionHigh'", [id])).rowCount ?? 0;
    const before = await warnings();
    app = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, allowHosts: allowHosts(), tickMs: 200, walRetentionWarningBytes: 1_000_000, log: () => undefined });
    await source.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'while paused' FROM generate_series(1, 30000) i");
    await waitFor(async () => (await warnings()) === before + 1, "the new process's WAL retention warning", 60_000);
    expect((await rest("GET", `/replications/${id}`)).body.status).toBe("Paused");
  }, 180_000);
});

describe("bad input gets the §6 envelope with a request id", () => {
  test.each([
    ["malformed JSON", "POST", "/replications", "{not json", 400, "INVALID_REQUEST"],
    ["a wrong type", "POST", "/replications", { tenant_id: 5 }, 400, "INVALID_REQUEST"],
    ["an unknown enum value", "POST", "/replications", { ...CREATE, config: { qos_tier: "Gold" } }, 400, "INVALID_REQUEST"],
    ["an unknown field", "POST", "/replications", { ...CREATE, colour: "red" }, 400, "INVALID_REQUEST"],
    ["page_size over 100", "GET", "/replications?page_size=101", undefined, 400, "INVALID_REQUEST"],
    ["a bad UUID", "GET", "/replications/not-a-uuid", undefined, 400, "INVALID_REQUEST"],
    ["an unknown connection", "POST", "/replications", { ...CREATE, source: { connection_id: "550e8400-e29b-41d4-a716-446655440099" } }, 400, "VALIDATION_ERROR"],
    ["an unknown path", "GET", "/nothing-here", undefined, 404, "NOT_FOUND"],
    ["an unknown migration", "GET", "/migrations/750e8400-e29b-41d4-a716-446655440005", undefined, 404, "NOT_FOUND"],
  ])("%s", async (_, method, path, body, status, code) => {
    const res = await rest(method as string, path as string, body);
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ code });
    expect(res.body.error.request_id).toMatch(/^req-/);
    expect(res.body.error.request_id).toBe(res.headers.get("x-request-id"));
    expect(Date.parse(res.body.error.timestamp)).toBeGreaterThan(0);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  test("a path that is neither REST nor an RPC is a 404 envelope", async () => {
    const res = await fetch(`http://127.0.0.1:${app.ports.http}/nowhere`);
    expect(res.status).toBe(404);
    const body = await res.json();
    expect(body.error).toMatchObject({ code: "NOT_FOUND", request_id: res.headers.get("x-request-id") });
  });

  test("the field at fault is named", async () => {
    const res = await rest("POST", "/replications", { ...CREATE, config: { qos_tier: "Gold" } });
    expect(res.body.error.details.violations).toEqual([
      { field: "config.qos_tier", description: 'unknown value "Gold"; expected one of BestEffort, Standard, Premium, Synchronous' },
    ]);
  });

  test("a known path with another method is 405 with Allow", async () => {
    const res = await rest("PUT", "/replications");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST, GET");
  });

  test("no token is 401, a read-only token cannot create (403)", async () => {
    const anonymous = await fetch(`${app.urls.rest}/replications`);
    expect(anonymous.status).toBe(401);
    const viewer = await rest("POST", "/replications", CREATE, {
      authorization: `Bearer ${await issueToken(loadSigningKey(dataDir), { roles: ["Viewer"] })}`,
    });
    expect(viewer.status).toBe(403);
    expect(viewer.body.error.details.required_permission).toBe("replication:create");
  });

  test("a client's own X-Request-Id is honoured", async () => {
    const res = await rest("GET", "/replications/not-a-uuid", undefined, { "x-request-id": "my-trace-42" });
    expect(res.headers.get("x-request-id")).toBe("my-trace-42");
    expect(res.body.error.request_id).toBe("my-trace-42");
  });
});
