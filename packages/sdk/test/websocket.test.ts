// A REST client's streams over the WebSocket API (spec §4) against a real
// server: in Node the main entry streams through `ws` by default (the server
// counts the socket), and its metric samples and events are the very
// messages gRPC gives for the same subscription; a browser-like socket (no
// headers) carries the bearer token as ?token= and a client with an API key
// streams over Connect instead; a refused credential is an UnauthorizedError
// at once, a deleted replication ends the stream with a NotFoundError.
import { create } from "@bufbuild/protobuf";
import { ReplicationEventSchema, type ReplicationMetrics } from "@heliosdb/replication-proto";
import WebSocket from "ws";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EventStore } from "../../server/src/store/events";
import { startWorld, type World } from "../../server/src/testing/world";
import { HeliosDBReplicationClient, NotFoundError, UnauthorizedError, type ReconnectInfo } from "../src/index.node";
import { grpc } from "../src/node/index";
import type { WebSocketFactory, WebSocketLike } from "../src/internal/web-socket";

let world: World;
let id: string;

beforeAll(async () => {
  world = await startWorld({ users: 100 });
  id = await world.createReplication("sdk_websocket", ["users"]);
  expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
}, 180_000);

afterAll(async () => {
  await world?.close();
}, 120_000);

/** The WebSocket connections the server has open now (its Prometheus gauge). */
async function openSockets(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${world.app.ports.http}/metrics`)).text();
  return Number(/^heliosdb_open_websockets (\S+)$/m.exec(text)?.[1] ?? NaN);
}

async function take<T>(stream: AsyncIterable<T>, n: number, whileOpen?: () => Promise<void>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) {
    items.push(item);
    if (items.length === 1) await whileOpen?.();
    if (items.length === n) break;
  }
  return items;
}

test("in Node a REST client streams over the WebSocket API, and gets the same events and samples as gRPC", async () => {
  const events = new EventStore(world.pool);
  const from = String((await events.head()).head);
  // Details as a proto map holds them: texts that look like numbers, one that does not read back as the same number, a boolean.
  for (let n = 0; n < 5; n++) {
    await events.append([{ replicationId: id, tenantId: "tenant-123", type: "ConfigChanged", severity: "Info", message: `ws ${n}`, details: { n, price: "1.50", retry_count: 3, flag: true, note: "x" } }]);
  }
  const rest = new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest });
  const overGrpc = new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest, transport: grpc(world.app.urls.grpc) });
  let socketsWhileStreaming = 0;
  const viaSocket = await take(rest.replications.streamEvents({ replicationId: id, cursor: from }), 5, async () => void (socketsWhileStreaming = await openSockets()));
  expect(socketsWhileStreaming).toBe(1);
  const viaGrpc = await take(overGrpc.replications.streamEvents({ replicationId: id, cursor: from }), 5);
  expect(viaSocket.map((e) => e.message)).toEqual(["ws 0", "ws 1", "ws 2", "ws 3", "ws 4"]);
  expect(viaSocket[0]!.details).toEqual({ n: "0", price: "1.50", retry_count: "3", flag: "true", note: "x" });
  expect(viaSocket).toEqual(viaGrpc);
  expect(viaSocket[0]).toEqual(create(ReplicationEventSchema, viaGrpc[0]));

  // Samples: each is the owner's stored observation, so both streams hold samples of the same instants.
  const [socketSamples, grpcSamples] = await Promise.all([
    take(rest.replications.streamMetrics(id, { intervalSeconds: 1 }), 4),
    take(overGrpc.replications.streamMetrics(id, { intervalSeconds: 1 }), 4),
  ]);
  const at = (s: ReplicationMetrics) => `${s.timestamp?.seconds}.${s.timestamp?.nanos}`;
  const shared = socketSamples.filter((s) => grpcSamples.some((g) => at(g) === at(s)));
  expect(shared.length).toBeGreaterThan(0);
  for (const s of shared) expect(s).toEqual(grpcSamples.find((g) => at(g) === at(s)));
  expect(typeof socketSamples[0]!.replicationLagBytes).toBe("bigint");
  await expect.poll(openSockets).toBe(0);
});

test("a browser's socket sends no headers: the bearer token goes as ?token=; with an API key the stream takes Connect", async () => {
  const urls: string[] = [];
  const browserLike: WebSocketFactory = {
    sendsHeaders: false,
    open(url, headers) {
      expect(headers).toEqual({});
      urls.push(url);
      return new WebSocket(url) as unknown as WebSocketLike;
    },
  };
  const withToken = new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest, webSocket: browserLike });
  const [sample] = await take(withToken.replications.streamMetrics(id), 1);
  expect(sample!.replicationId).toBe(id);
  expect(urls).toHaveLength(1);
  expect(new URL(urls[0]!).pathname).toBe("/v1/ws");
  expect(new URL(urls[0]!).searchParams.get("token")).toBe(world.token);

  const key = await world.rest("POST", "/api-keys", { name: "sdk websocket", roles: ["Viewer"], tenant_id: "tenant-123", tier: "Standard" });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  const withKey = new HeliosDBReplicationClient({ apiKey: key.body.secret, baseUrl: world.app.urls.rest, webSocket: browserLike });
  let socketsWhileStreaming = -1;
  const [keyed] = await take(withKey.replications.streamMetrics(id), 1, async () => void (socketsWhileStreaming = await openSockets()));
  expect(keyed!.replicationId).toBe(id);
  expect(urls).toHaveLength(1); // no socket: the key never goes in a URL
  expect(socketsWhileStreaming).toBe(0);
});

test("a refused credential is an UnauthorizedError at once; a deleted replication ends the stream with a NotFoundError", async () => {
  const refused = new HeliosDBReplicationClient({ token: "not-a-token", baseUrl: world.app.urls.rest, maxRetries: 5 });
  const reconnects: ReconnectInfo[] = [];
  const error = await take(refused.replications.streamMetrics(id).on("reconnect", (r) => reconnects.push(r)), 1).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UnauthorizedError);
  expect(error).toMatchObject({ status: 401, code: "UNAUTHORIZED" });
  expect((error as UnauthorizedError).requestId).toBeTruthy();
  expect(reconnects).toEqual([]);

  const gone = await world.createReplication("sdk_websocket_gone", ["users"]);
  const client = new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest });
  const stream = client.replications.streamMetrics(gone, { intervalSeconds: 3600 });
  const samples: ReplicationMetrics[] = [];
  const metricsEnding = new Promise<unknown>((resolve) => stream.on("data", (s) => samples.push(s)).on("error", resolve));
  await expect.poll(() => samples.length).toBe(1);
  expect((await world.rest("DELETE", `/replications/${gone}`)).status).toBe(204);
  const ended = await metricsEnding;
  expect(ended).toBeInstanceOf(NotFoundError);
  expect(ended).toMatchObject({ status: 404, details: { replication_id: gone } });
});
