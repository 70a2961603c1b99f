// The HTTP/1.1 upgrade hook of the dual listener and the WebSocket gateway's
// authentication through the interceptor chain, on a real listener. The
// upgrades are raw HTTP/1.1 requests from node:http and node:net — what a
// WebSocket client sends before the handshake (test/observability has the
// WebSocket API itself, with the ws package's client).
import { randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { ReplicationService } from "@heliosdb/replication-proto";
import { waitFor } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { authInterceptor, issueToken } from "./auth";
import { idempotencyInterceptor } from "./idempotency";
import { IdempotencyKeyStore } from "../store/idempotency-keys";
import { requestInterceptor } from "./interceptors";
import { listenDual, type App, type Listener } from "./listen";
import { upgradeAuthenticator } from "./upgrade";
import { createInvoker } from "./invoke";
import { WebSocketGateway } from "./ws";

const key = randomBytes(32);
const nowhere = new pg.Pool({ host: "127.0.0.1", port: 9, connectionTimeoutMillis: 1 });
let listener: Listener;
let gateway: WebSocketGateway;
let admin: string;
let viewer: string;
let viewerless: string;

beforeAll(async () => {
  const interceptors = [requestInterceptor(() => undefined), authInterceptor(key), idempotencyInterceptor(new IdempotencyKeyStore(nowhere))];
  // The application answers what it was asked, to show declined upgrades reach it as plain requests.
  const app: App = (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ method: req.method, url: req.url, upgrade: req.headers.upgrade ?? null, connection: req.headers.connection ?? null, body: Buffer.concat(chunks).toString() }));
    });
  };
  // No RPC behind it: these tests end at the handshake.
  gateway = new WebSocketGateway(upgradeAuthenticator(interceptors, ReplicationService.method.streamReplicationEvents), createInvoker(() => undefined, interceptors, "websocket"));
  listener = await listenDual(app, "127.0.0.1", 0, gateway.handle);
  admin = await issueToken(key, { roles: ["Admin"], subject: "admin" });
  viewer = await issueToken(key, { roles: ["Viewer"], subject: "viewer", tenantId: "tenant-123" });
  viewerless = await issueToken(key, { roles: [], permissions: ["connection:read"], subject: "nobody" });
});

afterAll(async () => {
  gateway?.close();
  await listener?.close();
  await nowhere.end();
});

interface Answer {
  status: number;
  header: http.IncomingHttpHeaders;
  body: { error?: { code: string; message: string; details: Record<string, unknown>; request_id: string; timestamp: string } } & Record<string, unknown>;
  /** Resolves when the server has closed the connection. */
  closed: Promise<void>;
}

// A WebSocket handshake request; the server's answer (101 when it upgrades: the socket is then closed by the client).
function upgrade(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: listener.port,
      path,
      agent: false,
      headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": randomBytes(16).toString("base64"), ...headers },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode!, header: res.headers, body: {}, closed: Promise.resolve() });
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const socket = res.socket;
      const closed = new Promise<void>((done) => (socket.destroyed ? done() : socket.once("close", () => done())));
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        resolve({ status: res.statusCode!, header: res.headers, body: JSON.parse(Buffer.concat(chunks).toString()), closed });
        // A declined upgrade is a keep-alive request like any other: this client is done with it.
        if (res.statusCode === 200) socket.destroy();
      });
    });
    req.end();
  });
}

describe("an upgrade to /v1/ws authenticates through the interceptor chain", () => {
  test("without a token: 401 with the §6 envelope and its request id, and the socket closed", async () => {
    const answer = await upgrade("/v1/ws");
    expect(answer.status).toBe(401);
    await answer.closed;
    expect(answer.header["content-type"]).toBe("application/json; charset=utf-8");
    expect(answer.body.error).toMatchObject({ code: "UNAUTHORIZED", message: expect.stringMatching(/missing credentials/), details: {}, timestamp: expect.any(String) });
    expect(answer.body.error!.request_id).toMatch(/^req-/);
    expect(answer.header["x-request-id"]).toBe(answer.body.error!.request_id);
  });

  test("an invalid token: 401; a token without replication:read: 403", async () => {
    const invalid = await upgrade(`/v1/ws?token=${admin}x`);
    expect(invalid.status).toBe(401);
    expect(invalid.body.error).toMatchObject({ code: "UNAUTHORIZED", message: expect.stringMatching(/the token's signature is not valid/) });
    const forbidden = await upgrade(`/v1/ws?token=${viewerless}`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toMatchObject({ code: "FORBIDDEN", details: { required_permission: "replication:read" } });
  });

  test("authenticated by the query's token= (spec §4.1) or the Authorization header: the handshake completes (101)", async () => {
    for (const [path, headers] of [
      [`/v1/ws?token=${viewer}`, {}],
      ["/v1/ws", { Authorization: `Bearer ${admin}` }],
    ] as const) {
      const answer = await upgrade(path, headers);
      expect(answer.status).toBe(101);
      expect(answer.header.upgrade).toBe("websocket");
    }
    // Each closed by its client: the gateway holds no socket after them.
    await waitFor(async () => gateway.open === 0, "the gateway's sockets closed");
  });
});

describe("upgrades the gateway declines are served as plain requests", () => {
  test("a WebSocket upgrade to another path reaches the application without its Upgrade", async () => {
    const answer = await upgrade("/v1/health?x=1");
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ method: "GET", url: "/v1/health?x=1", upgrade: null, connection: null });
  });

  test("an h2c upgrade (curl --http2) with a body is answered over HTTP/1.1, and the connection stays open for the next request", async () => {
    const socket = net.connect(listener.port, "127.0.0.1");
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString()));
    socket.write("POST /v1/echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello");
    socket.write("GET /v1/after HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise<void>((resolve) => socket.on("data", () => text.split("HTTP/1.1 200").length === 3 && text.includes('"/v1/after"') && resolve()));
    socket.destroy();
    const bodies = text.split(/\r\n\r\n/).filter((part) => part.startsWith("{")).map((part) => JSON.parse(part.replace(/HTTP\/1\.1[\s\S]*$/, "")));
    expect(bodies).toEqual([
      { method: "POST", url: "/v1/echo", upgrade: null, connection: "keep-alive", body: "hello" },
      { method: "GET", url: "/v1/after", upgrade: null, connection: null, body: "" },
    ]);
  });
});
