// GET /metrics as Prometheus scrapes it: the owned replications' live
// figures labelled by replication, tenant and QoS tier (gone once the
// replication is deleted); every call counted once by RPC, protocol and
// code, over REST, gRPC (grpc-js), gRPC-web and Connect; open streams and
// each event's delivery lag; process metrics;
// and who may scrape — anyone on a loopback listener, else an operator's
// credential with metrics:read (a tenant's is refused: the labels name
// every tenant), unless --metrics-public.
import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ReplicationService } from "@heliosdb/replication-proto";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { RunningApp } from "../../src/app";
import { EventStore } from "../../src/store/events";
import { startWorld, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { Clients, PROTOCOLS } from "../security/protocols";

let world: World;
let id: string;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

// The text exposition's samples (comments skipped); label values here never hold quotes or commas.
function parse(text: string): Sample[] {
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

async function scrape(app: RunningApp = world.app, headers: Record<string, string> = {}): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${app.ports.http}/metrics`, { headers });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

const find = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

beforeAll(async () => {
  world = await startWorld({ users: 200 });
  id = await world.createReplication("prometheus_db", ["users"]);
  expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
}, 180_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe("GET /metrics", () => {
  test("the owned replication's live figures, labelled by replication, tenant and QoS tier", async () => {
    // Rows moving now: the rate the gauge shows is the engine's, over its window.
    const writes = (async () => {
      for (let i = 0; i < 40; i++) await world.source.query("INSERT INTO users (name, email) VALUES ($1, $2)", [`prom-${i}`, `prom-${i}@example.com`]);
    })();
    const labels = { replication_id: id, tenant_id: "tenant-123", qos_tier: "Premium" };
    let samples: Sample[] = [];
    await waitFor(async () => {
      samples = await scrape();
      return (find(samples, "heliosdb_replication_rows_per_second", labels)?.value ?? 0) > 0;
    }, "rows per second above 0 while rows move");
    await writes;
    expect(find(samples, "heliosdb_replication_status", { ...labels, status: "Streaming" })?.value).toBe(1);
    expect(find(samples, "heliosdb_replication_status", { ...labels, status: "Error" })?.value).toBe(0);
    for (const name of ["heliosdb_replication_lag_seconds", "heliosdb_replication_lag_bytes", "heliosdb_replication_compression_ratio", "heliosdb_replication_wal_retained_bytes"]) {
      const sample = find(samples, name, labels);
      expect(sample, name).toBeDefined();
      expect(sample!.value, name).toBeGreaterThanOrEqual(0);
    }
    // The same figures the API reports, from the same engine.
    const live = world.app.orchestrator.figures(id)!;
    expect(find(samples, "heliosdb_replication_status", { ...labels, status: live.status })?.value).toBe(1);
    expect(find(samples, "process_cpu_user_seconds_total", {})?.value).toBeGreaterThan(0);
    expect(find(samples, "nodejs_heap_size_used_bytes", {})?.value).toBeGreaterThan(0);
  });

  test("every call counted once by RPC, protocol and code, on every protocol", async () => {
    const clients = new Clients(world.app);
    try {
      const headers = { authorization: `Bearer ${world.token}` };
      const rpc = "ReplicationService.GetReplication";
      const before = await scrape();
      const count = (samples: Sample[], protocol: string, code: string) => find(samples, "heliosdb_rpc_requests_total", { rpc, protocol, code })?.value ?? 0;
      for (const protocol of PROTOCOLS) {
        expect((await clients.call(protocol, "getReplication", { id }, headers)).code, protocol).toBe("OK");
        expect((await clients.call(protocol, "getReplication", { id }, headers)).code, protocol).toBe("OK");
        expect((await clients.call(protocol, "getReplication", { id: randomUUID() }, headers)).code, protocol).toBe("NOT_FOUND");
      }
      const after = await scrape();
      for (const protocol of PROTOCOLS) {
        expect(count(after, protocol, "OK") - count(before, protocol, "OK"), protocol).toBe(2);
        expect(count(after, protocol, "NOT_FOUND") - count(before, protocol, "NOT_FOUND"), protocol).toBe(1);
        const timed = find(after, "heliosdb_rpc_duration_seconds_count", { rpc, protocol, code: "OK" })?.value ?? 0;
        expect(timed - (find(before, "heliosdb_rpc_duration_seconds_count", { rpc, protocol, code: "OK" })?.value ?? 0), protocol).toBe(2);
      }
    } finally {
      clients.close();
    }
  });

  test("beyond loopback: an operator's credential with metrics:read, not a tenant's; or --metrics-public", async () => {
    const wide = await world.startServer({ host: "0.0.0.0" });
    const open = await world.startServer({ host: "0.0.0.0", metricsPublic: true });
    try {
      const key = loadSigningKey(world.dataDir);
      const get = async (app: RunningApp, headers: Record<string, string> = {}, method = "GET") => {
        const res = await fetch(`http://127.0.0.1:${app.ports.http}/metrics`, { method, headers });
        const text = await res.text();
        return { status: res.status, body: res.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : text };
      };
      const bearer = async (request: Parameters<typeof issueToken>[1]) => ({ authorization: `Bearer ${await issueToken(key, request)}` });
      expect((await get(wide)).body.error.code).toBe("UNAUTHORIZED");
      const tenant = await get(wide, await bearer({ roles: ["Admin"], tenantId: "tenant-123" }));
      expect([tenant.status, tenant.body.error.code]).toEqual([403, "FORBIDDEN"]);
      const narrow = await get(wide, await bearer({ roles: [], permissions: ["replication:read"] }));
      expect([narrow.status, narrow.body.error.details.required_permission]).toEqual([403, "metrics:read"]);
      expect((await get(wide, await bearer({ roles: [], permissions: ["metrics:read"] }))).status).toBe(200);
      expect((await get(open)).status).toBe(200);
      const post = await get(world.app, {}, "POST");
      expect([post.status, post.body.error.code]).toEqual([405, "METHOD_NOT_ALLOWED"]);
    } finally {
      await world.stopServer(wide);
      await world.stopServer(open);
    }
  });

  test("open streams by protocol, and each event's delivery lag as it leaves", async () => {
    const client = createClient(ReplicationService, createGrpcTransport({ baseUrl: world.app.urls.grpc }));
    const before = await scrape();
    const delivered = (samples: Sample[]) => find(samples, "heliosdb_event_delivery_seconds_count", { protocol: "grpc" })?.value ?? 0;
    const controller = new AbortController();
    const received: string[] = [];
    const reading = (async () => {
      try {
        for await (const e of client.streamReplicationEvents({ replicationId: id, eventTypes: ["ConfigChanged"] }, { headers: { authorization: `Bearer ${world.token}` }, signal: controller.signal })) received.push(e.message);
      } catch {
        // Aborted below.
      }
    })();
    await waitFor(async () => find(await scrape(), "heliosdb_open_streams", { protocol: "grpc" })?.value === 1, "one gRPC stream open");
    await waitFor(async () => world.app.feeds.events.open === 1, "the stream subscribed");
    const events = new EventStore(world.pool);
    for (let n = 0; n < 3; n++) await events.record({ replicationId: id, tenantId: "tenant-123", type: "ConfigChanged", severity: "Info", message: `prometheus ${n}`, details: {} });
    await waitFor(async () => received.length === 3, "the three events received");
    const after = await scrape();
    expect(delivered(after) - delivered(before)).toBe(3);
    controller.abort();
    await reading;
    await waitFor(async () => find(await scrape(), "heliosdb_open_streams", { protocol: "grpc" })?.value === 0, "the stream closed");
  });

  test("a deleted replication leaves the exposition", async () => {
    expect((await world.rest("POST", `/replications/${id}/stop`)).status).toBe(200);
    expect((await world.rest("DELETE", `/replications/${id}`)).status).toBe(204);
    await waitFor(async () => !find(await scrape(), "heliosdb_replication_status", { replication_id: id }), "the replication's series gone");
  });
});
