// The SDK's event stream against real servers — a REST client in Node, so
// over the WebSocket API (spec §4) — through a TCP proxy standing for a load
// balancer: the proxy cuts every connection mid-stream, then the
// server process behind it is killed (kill -9) and another one started in
// its place — while events are appended. The stream reconnects by itself
// and delivers every event exactly once, in order. And the metric stream as
// spec §9.1 uses it: on('data'), then the replication deleted ends it with
// a NotFoundError.
import { setTimeout as sleep } from "node:timers/promises";
import type { ReplicationEvent, ReplicationMetrics } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EventStore } from "../../server/src/store/events";
import { startServerProcess, type ServerProcess } from "../../server/src/testing/server-process";
import { startWorld, type World } from "../../server/src/testing/world";
import { HeliosDBReplicationClient, NotFoundError, type ReconnectInfo } from "../src/index.node";
import { proxyTo } from "./proxy";

let world: World;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  world = await startWorld({ users: 100 });
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  await world?.close();
}, 120_000);

async function serverProcess(): Promise<ServerProcess> {
  const proc = await startServerProcess({ databaseUrl: world.control.url("controlplane"), dataDir: world.dataDir, tickMs: 200, allowHosts: world.allowHosts });
  cleanups.push(() => proc.kill());
  return proc;
}

test("events resume after the connection is cut and after the server is killed and replaced: each event exactly once, in order", async () => {
  const id = await world.createReplication("sdk_resume", ["users"]);
  const events = new EventStore(world.pool);
  const from = (await events.head()).head;
  let proc = await serverProcess();
  const proxy = await proxyTo(Number(new URL(proc.urls.rest).port));
  cleanups.push(() => proxy.close());

  const client = new HeliosDBReplicationClient({ token: world.token, baseUrl: `http://127.0.0.1:${proxy.port}/v1`, maxRetries: 10 });
  const stream = client.replications.streamEvents({ replicationId: id, cursor: String(from) });
  const received: ReplicationEvent[] = [];
  const reconnects: ReconnectInfo[] = [];
  stream.on("data", (e) => received.push(e)).on("reconnect", (r) => reconnects.push(r));

  // 90 events appended 30 at a time, while the stream is cut, then while its server is dead.
  let appended = 0;
  const append = async (n: number) => {
    for (let i = 0; i < n; i++, appended++) {
      await events.append([{ replicationId: id, tenantId: "tenant-123", type: "ConfigChanged", severity: "Info", message: `sdk ${appended}`, details: { n: appended } }]);
      await sleep(10);
    }
  };
  const until = async (n: number, what: string) => {
    const deadline = Date.now() + 60_000;
    while (received.length < n) {
      if (Date.now() > deadline) throw new Error(`${what}: ${received.length} of ${n} events received`);
      await sleep(50);
    }
  };

  await append(30);
  await until(10, "before the cut");
  proxy.cut();
  await until(30, "after the cut");
  const killed = proc.kill();
  await append(30); // appended while no server answers
  await killed;
  proc = await serverProcess();
  proxy.retarget(Number(new URL(proc.urls.rest).port));
  await append(30);
  await until(90, "after the server was replaced");
  await sleep(500);
  stream.abort();

  // Every event of the log after `from`, each once, in the log's order.
  const { rows } = await world.pool.query<{ id: string }>("SELECT id::text FROM events WHERE replication_id = $1 AND id > $2 ORDER BY events.id", [id, String(from)]);
  expect(rows).toHaveLength(90);
  expect(received.map((e) => e.cursor)).toEqual(rows.map((r) => r.id));
  expect(received.map((e) => e.details.n)).toEqual(Array.from({ length: 90 }, (_, i) => String(i)));
  expect(reconnects.length).toBeGreaterThanOrEqual(2);
}, 180_000);

test("spec §9.1's metric stream: on('data') gets live samples; the replication deleted ends it with a NotFoundError", async () => {
  const id = await world.createReplication("sdk_metrics", ["users"]);
  const client = new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest });
  await client.replications.start(id);
  const samples: ReplicationMetrics[] = [];
  const errors: unknown[] = [];
  let ended = false;
  const metricsStream = client.replications.streamMetrics(id, { intervalSeconds: 1 });
  metricsStream.on("data", (metrics) => samples.push(metrics)).on("error", (e) => errors.push(e)).on("end", () => (ended = true));
  while (samples.length < 2) await sleep(100);
  expect(samples[0]!.replicationId).toBe(id);
  expect(samples[0]!.replicationLagSeconds).toBeGreaterThanOrEqual(0);
  await client.replications.delete(id);
  while (!ended) await sleep(100);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toBeInstanceOf(NotFoundError);
}, 120_000);
