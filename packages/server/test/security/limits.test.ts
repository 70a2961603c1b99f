// No input can make the server buffer or wait without bound: a request
// without credentials is refused before its body is read, on every
// protocol (the client is answered while it is still sending, and a server
// in its own process does not grow by the body); bodies are bounded on
// every protocol; a client that sends its headers or its body byte by byte
// is cut off, and an idle connection is closed. No test here times anything:
// each waits for what the server does and checks what it did.
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ApiErrorSchema, ListReplicationsRequestSchema, ReplicationService } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startServerProcess, type ServerProcess } from "../../src/testing/server-process";
import { grpcFrame, grpcStatusOf, http1, rawHttp, startHarness, type Harness } from "./harness";

const MAX_BODY = 64 * 1024;
let h: Harness;
let token: string;

beforeAll(async () => {
  h = await startHarness({ app: { transport: { maxBodyBytes: MAX_BODY, headersTimeoutMs: 400, requestTimeoutMs: 1500, idleTimeoutMs: 800 } } });
  token = await h.token();
}, 120_000);

afterAll(() => h?.close(), 60_000);

const TOTAL = 100 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/**
 * POSTs a 100 MB body over HTTP/1.1 without credentials, chunk by chunk as
 * the socket takes them, until the server answers; resolves the answer and
 * how much was sent by then.
 */
function sendUntilAnswered(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve) => {
    let sent = 0;
    let answered = false;
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", headers: { ...headers, "content-length": String(TOTAL) } });
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("close", () => resolve({ status: res.statusCode!, body, sent }));
      res.on("error", () => undefined);
    });
    // The server resets the connection after its answer: writes then fail. Without an answer, the test fails on status 0.
    req.on("error", () => undefined);
    req.on("close", () => answered || resolve({ status: 0, body: "", sent }));
    const pump = () => {
      while (!answered && sent < TOTAL) {
        sent += CHUNK.length;
        if (!req.write(CHUNK)) return void req.once("drain", pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

describe("credentials are checked before the body is read", () => {
  test("REST: 401 while the client is still sending", async () => {
    const answer = await sendUntilAnswered(h.app.ports.http, "/v1/replications", { "content-type": "application/json" });
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body).error.code).toBe("UNAUTHORIZED");
    expect(answer.sent).toBeLessThan(TOTAL);
  });

  test("Connect: unauthenticated while the client is still sending", async () => {
    const answer = await sendUntilAnswered(h.app.ports.http, "/heliosdb.replication.v1.ReplicationService/CreateReplication", { "content-type": "application/json" });
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "unauthenticated" });
    expect(answer.sent).toBeLessThan(TOTAL);
  });

  test("gRPC: UNAUTHENTICATED while the client is still sending", async () => {
    const session = http2.connect(h.app.urls.grpc);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/heliosdb.replication.v1.ReplicationService/ListReplications", "content-type": "application/grpc", te: "trailers" });
      let sent = 0;
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on("trailers", resolve));
      const closed = new Promise((resolve) => stream.on("close", resolve));
      stream.on("error", () => undefined);
      stream.write(grpcFrame(Buffer.alloc(0)).subarray(0, 1));
      const pump = () => {
        while (sent < TOTAL && !stream.destroyed) {
          sent += CHUNK.length;
          if (!stream.write(CHUNK)) return void stream.once("drain", pump);
        }
      };
      pump();
      const status = grpcStatusOf(await trailers);
      expect(status.code).toBe(Code.Unauthenticated);
      expect(status.apiError).toMatchObject({ code: "UNAUTHORIZED", requestId: expect.stringMatching(/^req-/) });
      expect(sent).toBeLessThan(TOTAL);
      // The server resets the stream rather than read the rest: the upload stops.
      await closed;
      expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });

  test("a server in its own process does not grow by an unauthenticated 100 MB body", async () => {
    let server: ServerProcess | undefined;
    try {
      server = await startServerProcess({ databaseUrl: h.cluster.url("controlplane"), dataDir: h.dataDir, tickMs: 60_000 });
      const port = Number(new URL(server.urls.rest).port);
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server!.pid}/status`, "utf8"))![1]) * 1024;
      // A first call of each kind warms the server up (code loaded, pools made), so that what follows measures the body alone.
      await sendUntilAnswered(port, "/heliosdb.replication.v1.ReplicationService/CreateReplication", { "content-type": "application/json" });
      const before = rss();
      for (let i = 0; i < 3; i++) {
        const answer = await sendUntilAnswered(port, "/heliosdb.replication.v1.ReplicationService/CreateReplication", { "content-type": "application/json" });
        expect(answer.status).toBe(401);
      }
      // A server that buffered a body would hold 100 MB of it. What it does allocate — the chunks read
      // before the refusal — is freed at the next collection, which a busy machine runs later: 10-12 MB
      // of growth alone, up to 31 MB seen under a full test run. Half a body tells the two apart.
      expect(rss() - before).toBeLessThan(TOTAL / 2);
    } finally {
      await server?.kill();
    }
  }, 120_000);
});

describe("bodies are bounded on every protocol", () => {
  const big = () => create(ListReplicationsRequestSchema, { tenantId: "x".repeat(MAX_BODY) });

  test("REST: 413", async () => {
    const answer = await rawHttp(h.app.ports.http, http1("POST", "/v1/replications", { authorization: `Bearer ${token}`, "content-type": "application/json" }, JSON.stringify({ tenant_id: "x".repeat(MAX_BODY) })));
    expect(answer.status).toBe(413);
    expect(answer.body.error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", details: { max_body_bytes: MAX_BODY } });
  });

  test.each([
    ["Connect", () => createConnectTransport({ baseUrl: `http://127.0.0.1:${h.app.ports.http}`, httpVersion: "1.1" })],
    ["gRPC", () => createGrpcTransport({ baseUrl: h.app.urls.grpc })],
  ])("%s: RESOURCE_EXHAUSTED with PAYLOAD_TOO_LARGE", async (_, transport) => {
    const error = await createClient(ReplicationService, transport())
      .listReplications(big(), { headers: { authorization: `Bearer ${token}` } })
      .then(() => undefined, (e: unknown) => e as ConnectError);
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "PAYLOAD_TOO_LARGE", details: { max_body_bytes: MAX_BODY } });
    expect(toBinary(ListReplicationsRequestSchema, big()).length).toBeGreaterThan(MAX_BODY);
  });
});

describe("slow and idle clients are cut off", () => {
  /**
   * Sends `head` at once, then `bytes` one at a time, each after the server
   * has had a moment; resolves how many of them were sent when the server
   * closed the connection, and what it answered.
   */
  function trickle(port: number, head: string, bytes: Buffer): Promise<{ sent: number; answer: string }> {
    return new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      let sent = 0;
      let answer = "";
      let timer: NodeJS.Timeout | undefined;
      socket.on("data", (d) => (answer += d));
      socket.on("error", () => undefined);
      socket.on("close", () => {
        clearTimeout(timer);
        resolve({ sent, answer });
      });
      const next = () => {
        if (sent === bytes.length) return;
        socket.write(bytes.subarray(sent, ++sent));
        timer = setTimeout(next, 100);
      };
      socket.on("connect", () => {
        socket.write(head);
        next();
      });
    });
  }

  test("headers sent byte by byte: the connection is closed before they are complete", async () => {
    const request = Buffer.from(`GET /v1/health HTTP/1.1\r\nhost: localhost\r\n${"x-slow: byte-by-byte\r\n".repeat(20)}\r\n`);
    const { sent, answer } = await trickle(h.app.ports.http, "", request);
    expect(sent).toBeLessThan(request.length);
    // Node answers a request that timed out with 408 when it can: in the §6 envelope.
    if (answer) expect(answer).toMatch(/^HTTP\/1\.1 408[\s\S]*"code":"REQUEST_TIMEOUT"/);
  }, 60_000);

  test("a body sent byte by byte: 408 REQUEST_TIMEOUT before it is complete", async () => {
    const body = JSON.stringify({ tenant_id: "t".repeat(400) });
    const head = `POST /v1/replications HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const { sent, answer } = await trickle(h.app.ports.http, head, Buffer.from(body));
    expect(sent).toBeLessThan(body.length);
    expect(answer).toMatch(/^HTTP\/1\.1 408[\s\S]*"code":"REQUEST_TIMEOUT"/);
  }, 60_000);

  test("a connection that sends nothing is closed", async () => {
    const socket = net.connect(h.app.ports.http, "127.0.0.1");
    socket.on("error", () => undefined);
    await new Promise((resolve) => socket.once("close", resolve));
    expect(socket.bytesRead).toBe(0);
  }, 60_000);

  test("an idle keep-alive connection is closed after its answer", async () => {
    const socket = net.connect(h.app.ports.http, "127.0.0.1");
    socket.on("error", () => undefined);
    let answer = "";
    socket.on("data", (d) => (answer += d));
    socket.write("GET /v1/health HTTP/1.1\r\nhost: localhost\r\n\r\n");
    await new Promise((resolve) => socket.once("close", resolve));
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  }, 60_000);

  test("HTTP/2: a body sent byte by byte gets 408 REQUEST_TIMEOUT before it is complete", async () => {
    const session = http2.connect(`http://127.0.0.1:${h.app.ports.http}`);
    try {
      const body = Buffer.from(JSON.stringify({ tenant_id: "t".repeat(400) }));
      const stream = session.request({ ":method": "POST", ":path": "/v1/replications", authorization: `Bearer ${token}`, "content-type": "application/json" });
      stream.on("error", () => undefined);
      let sent = 0;
      let status = 0;
      let text = "";
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (d) => (text += d));
      const closed = new Promise((resolve) => stream.on("close", resolve));
      const timer = setInterval(() => (stream.destroyed || sent === body.length ? clearInterval(timer) : stream.write(body.subarray(sent, ++sent))), 100);
      await closed;
      clearInterval(timer);
      expect(sent).toBeLessThan(body.length);
      expect(status).toBe(408);
      expect(JSON.parse(text).error.code).toBe("REQUEST_TIMEOUT");
    } finally {
      session.destroy();
    }
  }, 60_000);
});
