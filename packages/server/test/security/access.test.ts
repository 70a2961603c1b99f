// TLS and CORS: with a certificate (self-signed, committed under fixtures/), the
// REST port speaks HTTPS and h2 (ALPN decides) and the gRPC port gRPC over
// TLS, to real clients (node:https, node:http2, grpc-js, Connect); browsers
// on a configured origin get their preflight answered and may read the
// gRPC status, the request id and the rate-limit headers; other origins do
// not.
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { HealthService } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startHarness, type Harness } from "./harness";

const ORIGIN = "https://dashboard.example.com";
let h: Harness;
let ca: Buffer;

// A self-signed certificate for 127.0.0.1 and localhost, made once with
// openssl (valid 100 years) and committed: tests need no openssl.
const FIXTURES = fileURLToPath(new URL("fixtures", import.meta.url));

beforeAll(async () => {
  ca = readFileSync(join(FIXTURES, "localhost-cert.pem"));
  h = await startHarness({ app: { transport: { tls: { cert: ca, key: readFileSync(join(FIXTURES, "localhost-key.pem")) }, corsOrigins: [ORIGIN] } } });
}, 120_000);

afterAll(async () => {
  await h?.close();
}, 60_000);

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function httpsRequest(method: string, path: string, headers: Record<string, string> = {}, body = ""): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port: h.app.ports.http, method, path, headers, ca }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("TLS", () => {
  test("the REST port speaks HTTPS (HTTP/1.1)", async () => {
    expect(h.app.urls.rest).toMatch(/^https:\/\//);
    const answer = await httpsRequest("GET", "/v1/health");
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).status).toBe("Healthy");
  });

  test("the REST port speaks h2 when ALPN asks for it", async () => {
    const session = http2.connect(`https://127.0.0.1:${h.app.ports.http}`, { ca });
    try {
      const stream = session.request({ ":path": "/v1/health" });
      const status = await new Promise<number>((resolve) => stream.on("response", (headers) => resolve(Number(headers[":status"]))));
      stream.resume();
      expect(status).toBe(200);
      expect(session.alpnProtocol).toBe("h2");
    } finally {
      session.close();
    }
  });

  test("gRPC over TLS, with grpc-js and with Connect's gRPC transport", async () => {
    const client = new grpc.Client(`127.0.0.1:${h.app.ports.grpc}`, grpc.credentials.createSsl(ca));
    try {
      const bytes = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest("/heliosdb.replication.v1.HealthService/Health", (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (e, v) => (e ? reject(e) : resolve(v!))),
      );
      expect(bytes.length).toBeGreaterThan(0);
    } finally {
      client.close();
    }
    const health = await createClient(HealthService, createGrpcTransport({ baseUrl: h.app.urls.grpc, nodeOptions: { ca } })).health({});
    expect(health.status).toBe("Healthy");
  });

  test("cleartext is not served on a TLS port", async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: "127.0.0.1", port: h.app.ports.http, path: "/v1/health" }, (res) => resolve(`answered ${res.statusCode}`));
      req.on("error", (e) => resolve(`refused: ${(e as NodeJS.ErrnoException).code}`));
    });
    expect(outcome).toMatch(/^refused/);
  });
});

describe("CORS", () => {
  const preflight = (path: string, origin: string, method = "POST") =>
    httpsRequest("OPTIONS", path, { origin, "access-control-request-method": method, "access-control-request-headers": "authorization, content-type" });

  test.each([
    ["a REST path", "/v1/replications"],
    ["a gRPC-web path", "/heliosdb.replication.v1.ReplicationService/ListReplications"],
  ])("a preflight from a configured origin is answered: %s", async (_, path) => {
    const answer = await preflight(path, ORIGIN);
    expect(answer.status).toBe(204);
    expect(answer.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(answer.headers["access-control-allow-methods"]).toBe("GET, POST, PATCH, DELETE");
    const allowed = String(answer.headers["access-control-allow-headers"]).split(", ");
    expect(allowed).toEqual(expect.arrayContaining(["authorization", "x-api-key", "content-type", "idempotency-key", "connect-protocol-version", "x-grpc-web", "grpc-timeout"]));
    expect(answer.headers.vary).toBe("Origin");
  });

  test("a preflight from another origin is refused (403, the §6 envelope, no CORS headers)", async () => {
    const answer = await preflight("/v1/replications", "https://evil.example");
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body).error).toMatchObject({ code: "FORBIDDEN", request_id: answer.headers["x-request-id"] });
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
  });

  test("an answer to a configured origin exposes the status, request id and rate-limit headers; errors too", async () => {
    const token = await h.token();
    for (const [path, headers] of [
      ["/v1/replications", { authorization: `Bearer ${token}` }],
      ["/v1/replications/not-a-uuid", { authorization: `Bearer ${token}` }],
      ["/v1/replications", {}],
    ] as const) {
      const answer = await httpsRequest("GET", path, { origin: ORIGIN, ...headers });
      expect(answer.headers["access-control-allow-origin"], path).toBe(ORIGIN);
      const exposed = String(answer.headers["access-control-expose-headers"]).split(", ");
      expect(exposed).toEqual(
        expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"]),
      );
    }
    const other = await httpsRequest("GET", "/v1/health", { origin: "https://evil.example" });
    expect(other.status).toBe(200);
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });

  test("a gRPC-web call from a configured origin can read its status", async () => {
    const answer = await httpsRequest(
      "POST",
      "/heliosdb.replication.v1.HealthService/Health",
      { origin: ORIGIN, "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      "\u0000\u0000\u0000\u0000\u0000",
    );
    expect(answer.status).toBe(200);
    expect(answer.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(String(answer.headers["access-control-expose-headers"])).toContain("grpc-status");
  });
});
