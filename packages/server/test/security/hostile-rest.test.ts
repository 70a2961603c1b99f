// Hostile input over REST and plain HTTP/1.1, sent as raw bytes (fetch
// would fix up or refuse much of it): each gets the right 4xx with the §6
// envelope and a request id that matches the X-Request-Id header — never a
// 500, a bare status or a stack trace — and a 5xx is logged under its
// request id.
import { httpRoutes, MigrationService, pathTemplate } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startApp } from "../../src/app";
import { createPool } from "../../src/store/db";
import { http1, rawHttp, SOURCE, startHarness, TARGET, type Harness, type RawAnswer } from "./harness";

let h: Harness;
let auth: Record<string, string>;
let port: number;

beforeAll(async () => {
  h = await startHarness({ connections: true });
  auth = { authorization: `Bearer ${await h.token()}` };
  port = h.app.ports.http;
}, 120_000);

afterAll(() => h?.close(), 60_000);

const json = { "content-type": "application/json" };
const CREATE = { tenant_id: "tenant-123", source: { connection_id: SOURCE, database: "controlplane" }, target: { connection_id: TARGET, database: "controlplane" } };

/** The answer is the §6 envelope with `code`, at `status`, with a request id in body and header. */
function expectEnvelope(answer: RawAnswer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers["content-type"]).toMatch(/^application\/json/);
  expect(answer.body.error).toMatchObject({ code, message: expect.any(String), details: expect.any(Object) });
  expect(answer.body.error.request_id).toMatch(/^req-/);
  expect(answer.body.error.request_id).toBe(answer.headers["x-request-id"]);
  expect(Date.parse(answer.body.error.timestamp)).toBeGreaterThan(0);
  expect(answer.text).not.toMatch(/\bat .*\.(ts|js):\d+|node_modules|Error:/);
}

describe("text the API accepts", () => {
  test("a NUL byte in a query parameter is 400 naming it", async () => {
    const answer = await rawHttp(port, http1("GET", "/v1/replications?tenant_id=a%00b", auth));
    expectEnvelope(answer, 400, "INVALID_REQUEST");
    expect(answer.body.error.details.violations).toEqual([{ field: "tenant_id", description: expect.stringMatching(/NUL/) }]);
  });

  test("a NUL byte in a body field and in a schema name is 400 naming each", async () => {
    const body = JSON.stringify({ ...CREATE, tenant_id: "tenant\u0000123", source: { ...CREATE.source, schema: "pub\u0000lic" } });
    const answer = await rawHttp(port, http1("POST", "/v1/replications", { ...auth, ...json }, body));
    expectEnvelope(answer, 400, "INVALID_REQUEST");
    expect(answer.body.error.details.violations.map((v: { field: string }) => v.field)).toEqual(["tenant_id", "source.schema"]);
  });

  test("a lone surrogate from JSON is 400, not silently replaced", async () => {
    const answer = await rawHttp(port, http1("POST", "/v1/replications", { ...auth, ...json }, '{"tenant_id":"t\\ud800"}'));
    expectEnvelope(answer, 400, "INVALID_REQUEST");
  });

  test("a body that is not UTF-8 is 400, not read with U+FFFD", async () => {
    const body = Buffer.concat([Buffer.from('{"tenant_id":"t'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expectEnvelope(await rawHttp(port, http1("POST", "/v1/replications", { ...auth, ...json }, body)), 400, "INVALID_REQUEST");
  });

  test("percent-encoding that does not decode to UTF-8 is 400, in the path and in the query", async () => {
    const path = await rawHttp(port, http1("GET", "/v1/replications/%zz", auth));
    expectEnvelope(path, 400, "INVALID_REQUEST");
    expect(path.body.error.details.violations[0].field).toBe("id");
    expectEnvelope(await rawHttp(port, http1("GET", "/v1/replications?tenant_id=%FF", auth)), 400, "INVALID_REQUEST");
    // Without credentials, the same request is refused for those first.
    expectEnvelope(await rawHttp(port, http1("GET", "/v1/replications/%zz")), 401, "UNAUTHORIZED");
  });
});

describe("requests the HTTP parser refuses", () => {
  test("headers over the limit are 431", async () => {
    expectEnvelope(await rawHttp(port, http1("GET", "/v1/replications", { ...auth, "x-padding": "a".repeat(20_000) })), 431, "HEADERS_TOO_LARGE");
  });

  test("a URL over the limit is 431", async () => {
    expectEnvelope(await rawHttp(port, http1("GET", `/v1/replications?tenant_id=${"a".repeat(20_000)}`, auth)), 431, "HEADERS_TOO_LARGE");
  });

  test("an unknown method is 405 with Allow", async () => {
    const answer = await rawHttp(port, http1("BREW", "/v1/replications", auth));
    expectEnvelope(answer, 405, "METHOD_NOT_ALLOWED");
    expect(answer.headers.allow).toBe("GET, POST, PATCH, DELETE, OPTIONS");
  });

  test("Content-Length with Transfer-Encoding is 400", async () => {
    const request = http1("POST", "/v1/replications", { ...auth, ...json, "content-length": "2", "transfer-encoding": "chunked" }, "0\r\n\r\n");
    expectEnvelope(await rawHttp(port, request), 400, "INVALID_REQUEST");
  });
});

describe("bodies", () => {
  test("text/plain, a form, or no type at all is 415, not parsed as JSON", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
      const headers = { ...auth, ...(type ? { "content-type": type } : {}) };
      const answer = await rawHttp(port, http1("POST", "/v1/replications", headers, JSON.stringify(CREATE)));
      expectEnvelope(answer, 415, "UNSUPPORTED_MEDIA_TYPE");
    }
  });

  test("an empty body for a create is 400 naming the required fields, whoever asks", async () => {
    const tenantBound = { authorization: `Bearer ${await h.token({ tenantId: "tenant-123" })}` };
    for (const headers of [auth, tenantBound]) {
      const answer = await rawHttp(port, http1("POST", "/v1/replications", headers));
      expectEnvelope(answer, 400, "VALIDATION_ERROR");
      expect(answer.body.error.details.violations.map((v: { field: string }) => v.field)).toEqual(["tenant_id", "source", "target"]);
    }
  });

  test("a body over the limit is 413, declared or chunked", async () => {
    const big = JSON.stringify({ ...CREATE, config: { table_filter: ["x".repeat(2 << 20)] } });
    expectEnvelope(await rawHttp(port, http1("POST", "/v1/replications", { ...auth, ...json }, big)), 413, "PAYLOAD_TOO_LARGE");
    const chunked = Buffer.concat([
      Buffer.from(`POST /v1/replications HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: ${auth.authorization}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`),
      Buffer.from(`${Buffer.byteLength(big).toString(16)}\r\n${big}\r\n0\r\n\r\n`),
    ]);
    const answer = await rawHttp(port, chunked);
    expectEnvelope(answer, 413, "PAYLOAD_TOO_LARGE");
    expect(answer.body.error.details.max_body_bytes).toBe(1 << 20);
  });
});

// MigrationService answered 501 until migration landed; an empty request now meets its checks.
describe("MigrationService refuses an empty request in the envelope", () => {
  const routes = [MigrationService].flatMap(httpRoutes).filter((r) => !(r.verb === "GET" && !r.template.includes("{")));
  // An unknown migration is NOT_FOUND; an empty start is VALIDATION_ERROR.
  const expected = (template: string): [number, string] => (template.includes("{") ? [404, "NOT_FOUND"] : [400, "VALIDATION_ERROR"]);

  test.each(routes.map((r) => [`${r.verb} ${r.template}`, r] as const))("%s", async (_, route) => {
    const path = pathTemplate(route.template)
      .map((part) => ("variable" in part ? "750e8400-e29b-41d4-a716-446655440005" : part.literal))
      .join("");
    const answer = await rawHttp(port, http1(route.verb, path, { ...auth, ...(route.body ? json : {}) }, route.body ? "{}" : ""));
    expectEnvelope(answer, ...expected(route.template));
  });

  test("a plain GET /v1/ws, without Upgrade", async () => {
    expectEnvelope(await rawHttp(port, http1("GET", "/v1/ws", auth)), 400, "INVALID_REQUEST");
  });
});

describe("a 5xx", () => {
  test("is logged with its request id, and its text holds no internals", async () => {
    // A server of its own whose control-plane table has gone: the list fails inside the server.
    await h.cluster.createDatabase("broken");
    const pool = createPool(h.cluster.url("broken"));
    const log: string[] = [];
    const broken = await startApp({ db: pool, dataDir: h.dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 60_000, log: (m) => log.push(m) });
    try {
      await pool.query("ALTER TABLE replications RENAME TO replications_gone");
      const answer = await rawHttp(broken.ports.http, http1("GET", "/v1/replications", { ...auth, "x-request-id": "req-trace-5xx-1" }));
      expectEnvelope(answer, 500, "INTERNAL_ERROR");
      expect(answer.body.error.request_id).toBe("req-trace-5xx-1");
      expect(answer.text).not.toMatch(/relation|replications_gone|postgres/i);
      expect(log.filter((line) => line.includes("req-trace-5xx-1"))).toEqual([expect.stringMatching(/^internal error \(request req-trace-5xx-1\): .*relation "replications" does not exist/s)]);
    } finally {
      await broken.close();
      await pool.end();
    }
  });
});
