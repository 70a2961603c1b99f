// Server-streaming calls on real listeners, through the one interceptor
// chain: gRPC (grpc-js, and Connect's gRPC client) answered by our handler
// through the invoker, Connect and gRPC-web by Connect's adapter with the
// same interceptors. A test-only implementation of StreamReplicationMetrics
// stands in for the streams a later issue implements.
import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import { gunzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type ConnectRouter, type HandlerContext, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ApiErrorSchema, ReplicationMetricsSchema, ReplicationService, StreamMetricsRequestSchema } from "@heliosdb/replication-proto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { authInterceptor, issueToken } from "./auth";
import { apiError } from "./errors";
import { grpcHandler } from "./grpc";
import { idempotencyInterceptor } from "./idempotency";
import { IdempotencyKeyStore } from "../store/idempotency-keys";
import { requestInterceptor } from "./interceptors";
import { createInvoker } from "./invoke";
import { listenH2c, type App, type Listener } from "./listen";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const key = randomBytes(32);
// Never reached: streams do not take idempotency keys, so the interceptor must not touch it.
const nowhere = new pg.Pool({ host: "127.0.0.1", port: 9, connectionTimeoutMillis: 1 });

interface Run {
  id: string;
  signal: AbortSignal;
  ended: Promise<void>;
}
const runs: Run[] = [];
let byHandler = 0;

// Streams `interval_seconds` samples (after setting a response header), then fails or waits as its id says.
const routes = (router: ConnectRouter) => {
  router.service(ReplicationService, {
    // A unary call that waits for its end, for the cancellation of the unary path.
    async getReplication(req: { id: string }, ctx: HandlerContext) {
      let end!: () => void;
      runs.push({ id: req.id, signal: ctx.signal, ended: new Promise<void>((resolve) => (end = resolve)) });
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      end();
      return { id: req.id };
    },
    async *streamReplicationMetrics(req: { replicationId: string; intervalSeconds: number }, ctx: HandlerContext) {
      let end!: () => void;
      runs.push({ id: req.replicationId, signal: ctx.signal, ended: new Promise<void>((resolve) => (end = resolve)) });
      try {
        ctx.responseHeader.set("x-stream", "metrics");
        for (let i = 1; i <= req.intervalSeconds; i++) yield { replicationId: req.replicationId, replicationLagBytes: BigInt(i) };
        if (req.replicationId === "fail") throw apiError("REPLICATION_LAG_EXCEEDED", "lag exceeded", { replication_id: "fail", max_lag_seconds: 30 });
        if (req.replicationId === "wait") await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      } finally {
        end();
      }
    },
  } as never);
};

let listener: Listener;
let baseUrl: string;
let admin: string;
let viewerless: string;

beforeAll(async () => {
  const interceptors = [requestInterceptor(() => undefined), authInterceptor(key), idempotencyInterceptor(new IdempotencyKeyStore(nowhere))];
  const grpcCalls = grpcHandler([ReplicationService], createInvoker(routes, interceptors, "grpc"));
  const connect = connectNodeAdapter({ routes, interceptors });
  const app: App = (req, res) => {
    if ("stream" in req && grpcCalls(req, res as never)) return void byHandler++;
    connect(req as never, res as never);
  };
  listener = await listenH2c(app, "127.0.0.1", 0);
  baseUrl = `http://127.0.0.1:${listener.port}`;
  admin = await issueToken(key, { roles: ["Admin"], subject: "admin" });
  viewerless = await issueToken(key, { roles: [], permissions: ["connection:read"], subject: "nobody" });
});

afterAll(async () => {
  await listener?.close();
  await nowhere.end();
});

// ---- grpc-js, with our .proto files ----

type Sample = { replicationId: string; replicationLagBytes: string };
let grpcJs: grpc.Client & {
  StreamReplicationMetrics(request: object, metadata: grpc.Metadata): grpc.ClientReadableStream<Sample>;
  GetReplication(request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
};

beforeAll(() => {
  const definition = protoLoader.loadSync(["heliosdb/replication/v1/replication.proto"], {
    includeDirs: [join(ROOT, "proto"), join(ROOT, "node_modules/google-proto-files")],
    longs: String,
    enums: String,
    defaults: true,
  });
  const v1 = (grpc.loadPackageDefinition(definition) as never as { heliosdb: { replication: { v1: Record<string, grpc.ServiceClientConstructor> } } }).heliosdb.replication.v1;
  grpcJs = new v1.ReplicationService!(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure()) as never;
});

afterAll(() => grpcJs?.close());

function metadata(headers: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [name, value] of Object.entries(headers)) md.add(name, value);
  return md;
}

/** The call, the messages it delivers, and how it ends (error or not). */
function grpcJsStream(request: object, headers: Record<string, string>) {
  const call = grpcJs.StreamReplicationMetrics(request, metadata(headers));
  const messages: Sample[] = [];
  let header: grpc.Metadata | undefined;
  call.on("metadata", (md) => (header = md));
  const done = new Promise<{ error?: grpc.ServiceError }>((resolve) => {
    call.on("data", (m: Sample) => messages.push(m));
    call.on("error", (error: grpc.ServiceError) => resolve({ error }));
    call.on("end", () => resolve({}));
  });
  return { call, messages, done, header: () => header };
}

// The §6 detail in a grpc-js error: google.rpc.Status in grpc-status-details-bin.
function apiErrorOfGrpcJs(error: grpc.ServiceError) {
  const bin = error.metadata.get("grpc-status-details-bin")[0] as Buffer;
  return findTrailerError(new Headers({ "grpc-status-details-bin": bin.toString("base64").replace(/=+$/, "") }))!.findDetails(ApiErrorSchema)[0];
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("grpc-js, answered by our gRPC handler through the invoker", () => {
  test("messages arrive in order, large ones too, with the handler's and the chain's headers; an Idempotency-Key is left alone", async () => {
    const before = byHandler;
    const s = grpcJsStream({ replicationId: "r1", intervalSeconds: 5 }, { ...bearer(admin), "idempotency-key": "k1", "x-request-id": "req-stream-1" });
    expect(await s.done).toEqual({});
    expect(s.messages.map((m) => [m.replicationId, m.replicationLagBytes])).toEqual([1, 2, 3, 4, 5].map((i) => ["r1", String(i)]));
    expect(s.header()?.get("x-stream")).toEqual(["metrics"]);
    expect(s.header()?.get("x-request-id")).toEqual(["req-stream-1"]);
    const big = "x".repeat(4096);
    const large = grpcJsStream({ replicationId: big, intervalSeconds: 2 }, bearer(admin));
    expect(await large.done).toEqual({});
    expect(large.messages.map((m) => m.replicationId)).toEqual([big, big]);
    expect(byHandler - before).toBe(2);
  });

  test("an error after two messages reaches the client with its §6 detail", async () => {
    const s = grpcJsStream({ replicationId: "fail", intervalSeconds: 2 }, bearer(admin));
    const { error } = await s.done;
    expect(s.messages.map((m) => m.replicationLagBytes)).toEqual(["1", "2"]);
    expect(error?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(apiErrorOfGrpcJs(error!)).toMatchObject({ code: "REPLICATION_LAG_EXCEEDED", message: "lag exceeded", requestId: expect.stringMatching(/^req-/) });
  });

  test("the client cancelling ends the handler: its signal fires", async () => {
    const s = grpcJsStream({ replicationId: "wait", intervalSeconds: 1 }, bearer(admin));
    await vi.waitFor(() => expect(s.messages).toHaveLength(1));
    const run = runs.at(-1)!;
    expect(run.signal.aborted).toBe(false);
    s.call.cancel();
    expect((await s.done).error?.code).toBe(grpc.status.CANCELLED);
    await run.ended;
    expect(run.signal.aborted).toBe(true);
  });

  test("a unary call the client cancels ends its handler too", async () => {
    const before = runs.length;
    let failed!: (error: grpc.ServiceError | null) => void;
    const result = new Promise<grpc.ServiceError | null>((resolve) => (failed = resolve));
    const call = grpcJs.GetReplication({ id: "wait" }, metadata(bearer(admin)), failed);
    await vi.waitFor(() => expect(runs.length).toBe(before + 1));
    call.cancel();
    expect((await result)?.code).toBe(grpc.status.CANCELLED);
    await runs.at(-1)!.ended;
    expect(runs.at(-1)!.signal.reason).toMatchObject({ code: Code.Canceled });
  });

  test("without a token the stream is UNAUTHENTICATED, without the permission PERMISSION_DENIED, before the handler runs", async () => {
    const before = runs.length;
    const anonymous = await grpcJsStream({ replicationId: "r1", intervalSeconds: 1 }, {}).done;
    expect(anonymous.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(apiErrorOfGrpcJs(anonymous.error!)).toMatchObject({ code: "UNAUTHORIZED", requestId: expect.stringMatching(/^req-/) });
    const forbidden = await grpcJsStream({ replicationId: "r1", intervalSeconds: 1 }, bearer(viewerless)).done;
    expect(forbidden.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(apiErrorOfGrpcJs(forbidden.error!)).toMatchObject({ code: "FORBIDDEN" });
    expect(runs.length).toBe(before);
  });
});

describe("a plain HTTP/2 client (no deadline or decoding of its own)", () => {
  // One call: the frames of its body (flag, bytes), its headers and its trailers.
  async function raw(request: { replicationId: string; intervalSeconds: number }, headers: Record<string, string>) {
    const session = http2.connect(baseUrl);
    try {
      const body = toBinary(StreamMetricsRequestSchema, create(StreamMetricsRequestSchema, request));
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      const req = session.request({
        ":method": "POST",
        ":path": "/heliosdb.replication.v1.ReplicationService/StreamReplicationMetrics",
        "content-type": "application/grpc",
        te: "trailers",
        ...bearer(admin),
        ...headers,
      });
      req.end(frame);
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      const [header, trailers] = await Promise.all([
        new Promise<http2.IncomingHttpHeaders>((resolve) => req.on("response", resolve)),
        new Promise<http2.IncomingHttpHeaders>((resolve) => req.on("trailers", resolve)),
      ]);
      const frames: { compressed: boolean; bytes: Buffer }[] = [];
      const data = Buffer.concat(chunks);
      for (let at = 0; at < data.length; at += 5 + data.readUInt32BE(at + 1)) {
        frames.push({ compressed: data[at] === 1, bytes: data.subarray(at + 5, at + 5 + data.readUInt32BE(at + 1)) });
      }
      return { frames, header, trailers };
    } finally {
      session.close();
    }
  }

  test("the server's deadline (grpc-timeout) ends the handler and answers DEADLINE_EXCEEDED after the messages sent", async () => {
    const { frames, trailers } = await raw({ replicationId: "wait", intervalSeconds: 1 }, { "grpc-timeout": "300m" });
    expect(trailers["grpc-status"]).toBe(String(Code.DeadlineExceeded));
    expect(frames).toHaveLength(1);
    const run = runs.at(-1)!;
    await run.ended;
    expect(run.signal.reason).toMatchObject({ code: Code.DeadlineExceeded });
  });

  test("with grpc-accept-encoding: gzip, messages from 1 KiB are compressed, smaller ones not", async () => {
    const big = "x".repeat(2048);
    const { frames, header, trailers } = await raw({ replicationId: big, intervalSeconds: 1 }, { "grpc-accept-encoding": "gzip" });
    expect(header["grpc-encoding"]).toBe("gzip");
    expect(trailers["grpc-status"]).toBe("0");
    expect(frames.map((f) => f.compressed)).toEqual([true]);
    expect(fromBinary(ReplicationMetricsSchema, gunzipSync(frames[0]!.bytes)).replicationId).toBe(big);
    const small = await raw({ replicationId: "r1", intervalSeconds: 1 }, { "grpc-accept-encoding": "gzip" });
    expect(small.frames.map((f) => f.compressed)).toEqual([false]);
  });
});

// ---- Connect's clients over HTTP/2: gRPC (our handler), Connect and gRPC-web (Connect's adapter) ----

const transports: [string, () => Transport, boolean][] = [
  ["gRPC", () => createGrpcTransport({ baseUrl }), true],
  ["Connect", () => createConnectTransport({ baseUrl, httpVersion: "2" }), false],
  ["gRPC-web", () => createGrpcWebTransport({ baseUrl, httpVersion: "2" }), false],
];

describe.each(transports)("Connect's %s client over HTTP/2", (_name, transport, viaHandler) => {
  const client = () => createClient(ReplicationService, transport());

  test("messages arrive in order, with the handler's headers", async () => {
    const before = byHandler;
    let header: Headers | undefined;
    const lags: bigint[] = [];
    for await (const m of client().streamReplicationMetrics({ replicationId: "r1", intervalSeconds: 3 }, { headers: bearer(admin), onHeader: (h) => (header = h) })) {
      lags.push(m.replicationLagBytes);
    }
    expect(lags).toEqual([1n, 2n, 3n]);
    expect(header?.get("x-stream")).toBe("metrics");
    expect(header?.get("x-request-id")).toMatch(/^req-/);
    expect(byHandler - before).toBe(viaHandler ? 1 : 0);
  });

  test("an error after two messages reaches the client with its §6 detail", async () => {
    const lags: bigint[] = [];
    const error = await (async () => {
      for await (const m of client().streamReplicationMetrics({ replicationId: "fail", intervalSeconds: 2 }, { headers: bearer(admin) })) lags.push(m.replicationLagBytes);
    })().catch((e: unknown) => e);
    expect(lags).toEqual([1n, 2n]);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.FailedPrecondition);
    expect((error as ConnectError).findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "REPLICATION_LAG_EXCEEDED", details: { replication_id: "fail", max_lag_seconds: 30 } });
  });

  test("the client cancelling ends the handler: its signal fires", async () => {
    const abort = new AbortController();
    const stream = client().streamReplicationMetrics({ replicationId: "wait", intervalSeconds: 1 }, { headers: bearer(admin), signal: abort.signal });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    const run = runs.at(-1)!;
    abort.abort();
    await expect(it.next()).rejects.toMatchObject({ code: Code.Canceled });
    await run.ended;
    expect(run.signal.aborted).toBe(true);
  });

  test("without a token the stream is UNAUTHENTICATED before the handler runs", async () => {
    const before = runs.length;
    const error = await (async () => {
      for await (const _ of client().streamReplicationMetrics({ replicationId: "r1", intervalSeconds: 1 })) expect.unreachable();
    })().catch((e: unknown) => e);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect((error as ConnectError).findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "UNAUTHORIZED" });
    expect(runs.length).toBe(before);
  });
});
