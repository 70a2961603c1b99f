// Hostile input over gRPC (grpc-js sending raw bytes, and raw HTTP/2
// frames), gRPC-web and Connect (binary and JSON): each refusal carries the
// gRPC status of its §6 code and the §6 ApiError, with the request id, in
// the protocol's own form — never INTERNAL for what the client sent, never a
// parser's own words — and what a later milestone brings answers
// UNIMPLEMENTED with the detail on every protocol.
import { gzipSync } from "node:zlib";
import { create, toBinary, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { errorFromJson } from "@connectrpc/connect/protocol-connect";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import * as grpc from "@grpc/grpc-js";
import {
  ApiErrorSchema,
  GetReplicationRequestSchema,
  ListReplicationsRequestSchema,
  MigrationService,
  ReplicationService,
  type ApiError,
} from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { grpcFrame, grpcStatusOf, http1, rawHttp, rawHttp2, startHarness, type Harness } from "./harness";

let h: Harness;
let token: string;
let grpcJs: grpc.Client;

beforeAll(async () => {
  h = await startHarness();
  token = await h.token();
  grpcJs = new grpc.Client(`127.0.0.1:${h.app.ports.grpc}`, grpc.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  grpcJs?.close();
  await h?.close();
}, 60_000);

const GET = "/heliosdb.replication.v1.ReplicationService/GetReplication";
const EVENTS = "/heliosdb.replication.v1.ReplicationService/StreamReplicationEvents";
const raw = (b: Buffer) => b;

function bearer(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/** A grpc-js call with these exact request bytes (grpc-js frames them, and checks nothing). */
function grpcJsCall(path: string, bytes: Buffer, streaming = false): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    if (!streaming) {
      grpcJs.makeUnaryRequest(path, raw, raw, bytes, bearer(), (error) => (error ? resolve(error) : reject(new Error("the call succeeded"))));
      return;
    }
    const call = grpcJs.makeServerStreamRequest(path, raw, raw, bytes, bearer());
    call.on("data", () => undefined);
    call.on("error", resolve);
    call.on("end", () => reject(new Error("the stream ended without an error")));
  });
}

function apiErrorOfGrpcJs(error: grpc.ServiceError): ApiError | undefined {
  const bin = error.metadata.get("grpc-status-details-bin")[0] as Buffer | undefined;
  return bin ? grpcStatusOf(new Headers({ "grpc-status": String(error.code), "grpc-status-details-bin": bin.toString("base64").replace(/=+$/, "") })).apiError : undefined;
}

const requestId = expect.stringMatching(/^req-/);
// A parser's own words never reach the client.
const ourWords = expect.not.stringMatching(/premature EOF|invalid wire type|parse binary|Unexpected token|cannot decode|illegal tag/i);

describe("gRPC (grpc-js sends the bytes as they are)", () => {
  test.each([
    ["garbage", Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])],
    ["invalid UTF-8 in a string field", Buffer.from([0x0a, 0x02, 0xc3, 0x28])],
    ["a NUL in a string field", Buffer.from(toBinary(GetReplicationRequestSchema, create(GetReplicationRequestSchema, { id: "a\u0000b" })))],
  ])("%s is INVALID_ARGUMENT with the §6 INVALID_REQUEST detail", async (_, bytes) => {
    const error = await grpcJsCall(GET, bytes);
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(apiErrorOfGrpcJs(error)).toMatchObject({ code: "INVALID_REQUEST", message: ourWords, requestId });
  });

  test("an unknown method is UNIMPLEMENTED with the detail", async () => {
    const error = await grpcJsCall("/heliosdb.replication.v1.ReplicationService/NoSuchMethod", Buffer.alloc(0));
    expect(error.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(apiErrorOfGrpcJs(error)).toMatchObject({ code: "UNIMPLEMENTED", requestId });
  });
});

describe("gRPC and gRPC-web as raw HTTP/2 frames", () => {
  const headers = (type = "application/grpc", extra: Record<string, string> = {}) => ({
    ":method": "POST",
    ":path": GET,
    "content-type": type,
    te: "trailers",
    authorization: `Bearer ${token}`,
    ...extra,
  });
  const url = () => h.app.urls.grpc;

  test.each([
    ["a truncated envelope", grpcFrame(Buffer.from([0x0a, 0x01]), 0).subarray(0, 6), {}],
    ["two messages for a unary call", Buffer.concat([grpcFrame(Buffer.alloc(0)), grpcFrame(Buffer.alloc(0))]), {}],
    ["a compressed flag without grpc-encoding", grpcFrame(Buffer.from([1, 2, 3]), 1), {}],
    ["gzip that is not gzip", grpcFrame(Buffer.from("not gzip"), 1), { "grpc-encoding": "gzip" }],
    ["gzip of garbage", grpcFrame(gzipSync(Buffer.from([0xff, 0xff, 0xff])), 1), { "grpc-encoding": "gzip" }],
  ])("%s is INVALID_ARGUMENT with the detail", async (_, body, extra) => {
    const answer = await rawHttp2(url(), headers("application/grpc", extra), body);
    const { code, apiError } = grpcStatusOf({ ...answer.headers, ...answer.trailers });
    expect(code).toBe(Code.InvalidArgument);
    expect(apiError).toMatchObject({ code: "INVALID_REQUEST", message: ourWords, requestId });
  });

  test("a message over the body limit is RESOURCE_EXHAUSTED with PAYLOAD_TOO_LARGE, compressed or not", async () => {
    const big = toBinary(ListReplicationsRequestSchema, create(ListReplicationsRequestSchema, { tenantId: "x".repeat(2 << 20) }));
    for (const [body, extra] of [
      [grpcFrame(big), {}],
      [grpcFrame(gzipSync(big), 1), { "grpc-encoding": "gzip" }],
    ] as const) {
      const answer = await rawHttp2(url(), { ...headers("application/grpc", extra), ":path": "/heliosdb.replication.v1.ReplicationService/ListReplications" }, body);
      const { code, apiError } = grpcStatusOf({ ...answer.headers, ...answer.trailers });
      expect(code).toBe(Code.ResourceExhausted);
      expect(apiError).toMatchObject({ code: "PAYLOAD_TOO_LARGE", requestId });
    }
  });

  test("gRPC-web garbage: the trailer message carries the detail", async () => {
    const answer = await rawHttp2(url(), headers("application/grpc-web+proto"), grpcFrame(Buffer.from([0xff, 0xff, 0xff])));
    const last = lastEnvelope(answer.body);
    expect(last.flags & 0x80).toBe(0x80);
    const { code, apiError } = grpcStatusOf(trailerParse(last.data));
    expect(code).toBe(Code.InvalidArgument);
    expect(apiError).toMatchObject({ code: "INVALID_REQUEST", message: ourWords, requestId });
    expect(apiError!.requestId).toBe(answer.headers["x-request-id"]);
  });
});

describe("Connect, binary and JSON (raw HTTP/1.1)", () => {
  const connectError = (text: string) => errorFromJson(JSON.parse(text), undefined, new ConnectError("not a Connect error"));
  const call = (type: string, body: Buffer | string, path = GET) =>
    rawHttp(h.app.ports.http, http1("POST", path, { authorization: `Bearer ${token}`, "content-type": type, "connect-protocol-version": "1" }, body));

  test.each([
    ["application/proto garbage", "application/proto", Buffer.from([0xff, 0xff, 0xff, 0xff])],
    ["malformed JSON", "application/json", "{not json"],
    ["JSON that is not UTF-8", "application/json", Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])],
    ["a lone surrogate in JSON", "application/json", '{"id":"\\ud800"}'],
    ["a NUL in JSON", "application/json", '{"id":"a\\u0000b"}'],
  ])("%s is invalid_argument (400) with the detail", async (_, type, body) => {
    const answer = await call(type, body);
    expect(answer.status).toBe(400);
    const error = connectError(answer.text);
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "INVALID_REQUEST", message: ourWords, requestId: answer.headers["x-request-id"] });
  });

  test("a content type Connect does not speak is 415 in the §6 envelope", async () => {
    const answer = await call("text/plain", "{}");
    expect(answer.status).toBe(415);
    expect(answer.body.error).toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE", request_id: answer.headers["x-request-id"] });
  });

  test("a body over the limit is resource_exhausted with PAYLOAD_TOO_LARGE", async () => {
    const answer = await call("application/json", JSON.stringify({ tenant_id: "x".repeat(2 << 20) }), "/heliosdb.replication.v1.ReplicationService/ListReplications");
    const error = connectError(answer.text);
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "PAYLOAD_TOO_LARGE", requestId });
  });

  test("a Connect stream with garbage: the end-stream message carries the detail", async () => {
    const answer = await rawHttp2(h.app.urls.grpc, { ":method": "POST", ":path": EVENTS, "content-type": "application/connect+proto", authorization: `Bearer ${token}` }, grpcFrame(Buffer.from([0xff, 0xff])));
    const last = lastEnvelope(answer.body);
    expect(last.flags & 0x02).toBe(0x02);
    const error = connectError(JSON.stringify(JSON.parse(last.data.toString()).error));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "INVALID_REQUEST", message: ourWords, requestId });
  });
});

// MigrationService answered UNIMPLEMENTED until migration landed; an empty request now meets its checks.
describe("MigrationService refuses an empty request with the §6 detail, on every protocol", () => {
  const later: DescMethod[] = MigrationService.methods.filter((m) => m.name !== "ListMigrations");
  const codeOf = (method: DescMethod) => (method.name === "StartMigration" ? "VALIDATION_ERROR" : "INVALID_REQUEST");
  const transports: [string, () => Transport][] = [
    ["Connect", () => createConnectTransport({ baseUrl: `http://127.0.0.1:${h.app.ports.http}`, httpVersion: "1.1" })],
    ["gRPC-web", () => createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${h.app.ports.http}`, httpVersion: "1.1" })],
    ["gRPC", () => createGrpcTransport({ baseUrl: h.app.urls.grpc })],
  ];

  test.each(transports)("%s", async (_, transport) => {
    const t = transport();
    for (const method of later) {
      const client = createClient(method.parent, t) as unknown as Record<string, (req: object, options: object) => unknown>;
      const options = { headers: { authorization: `Bearer ${token}` } };
      let error: unknown;
      try {
        const out = client[method.localName]!({}, options);
        if (method.methodKind === "server_streaming") for await (const _ of out as AsyncIterable<unknown>) void _;
        else await out;
      } catch (e) {
        error = e;
      }
      expect(error, method.name).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code, method.name).toBe(Code.InvalidArgument);
      expect((error as ConnectError).findDetails(ApiErrorSchema)[0], method.name).toMatchObject({ code: codeOf(method), requestId });
    }
  });

  test("grpc-js, unary and server-streaming", async () => {
    for (const method of later) {
      const error = await grpcJsCall(`/${method.parent.typeName}/${method.name}`, Buffer.alloc(0), method.methodKind === "server_streaming");
      expect(error.code, method.name).toBe(grpc.status.INVALID_ARGUMENT);
      expect(apiErrorOfGrpcJs(error), method.name).toMatchObject({ code: codeOf(method), requestId });
    }
  });
});

// The last length-prefixed envelope of a body (gRPC-web's trailer, Connect's end-stream message).
function lastEnvelope(body: Buffer): { flags: number; data: Buffer } {
  let offset = 0;
  let last: { flags: number; data: Buffer } = { flags: -1, data: Buffer.alloc(0) };
  while (offset + 5 <= body.length) {
    const length = body.readUInt32BE(offset + 1);
    last = { flags: body[offset]!, data: body.subarray(offset + 5, offset + 5 + length) };
    offset += 5 + length;
  }
  return last;
}
