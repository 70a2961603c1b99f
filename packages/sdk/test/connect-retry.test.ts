// The Connect transports' share of the SDK's request logic, against a mock
// server (msw) speaking the Connect protocol: a refusal's ApiError detail
// becomes its code's class, with the details and request id; UNAVAILABLE is
// retried on the §6.3 schedule with the same Idempotency-Key on each attempt
// of a call that changes something (none on a read); RESOURCE_EXHAUSTED
// waits the retry_after_seconds the server gave; a verdict is not retried.
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ApiErrorSchema, CreateReplicationRequestSchema, GetReplicationRequestSchema, ReplicationSchema, ReplicationService } from "@heliosdb/replication-proto";
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { NotFoundError, RateLimitError } from "../src/core/index";
import { fromConnectTransport } from "../src/internal/connect-transport";

const BASE = "http://api.test";
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const M = ReplicationService.method;
const url = (rpc: string) => `${BASE}/heliosdb.replication.v1.ReplicationService/${rpc}`;

/** A Connect error answer carrying the server's ApiError, as the reference server sends it. */
function refusal(status: number, connectCode: string, code: string, extra: { retryAfterSeconds?: number } = {}) {
  const detail = create(ApiErrorSchema, { code, message: `refused: ${code}`, details: { replication_id: "r-1" }, requestId: `req-${code}`, ...extra });
  const value = Buffer.from(toBinary(ApiErrorSchema, detail)).toString("base64").replace(/=+$/, "");
  return HttpResponse.json({ code: connectCode, message: `refused: ${code}`, details: [{ type: "heliosdb.replication.v1.ApiError", value }] }, { status });
}

// The Connect protocol's JSON encoding (connect-web's default, and the SDK's).
const replication = () => HttpResponse.json(toJson(ReplicationSchema, create(ReplicationSchema, { id: "r-1", tenantId: "tenant-123" })));

function transport() {
  const waits: number[] = [];
  const t = fromConnectTransport(createConnectTransport({ baseUrl: BASE }), {
    headers: () => ({ authorization: "Bearer t0ken" }),
    timeoutMs: 5_000,
    retry: { random: () => 1, sleep: async (ms) => void waits.push(ms) },
  });
  return { t, waits };
}

test("UNAVAILABLE is retried on the §6.3 schedule, one Idempotency-Key across a create's attempts, none on a read", async () => {
  const keys: (string | null)[] = [];
  let failures = 2;
  server.use(
    http.post(url("CreateReplication"), ({ request }) => {
      keys.push(request.headers.get("idempotency-key"));
      return failures-- > 0 ? refusal(503, "unavailable", "SERVICE_UNAVAILABLE") : replication();
    }),
  );
  const { t, waits } = transport();
  const created = await t.unary(M.createReplication, create(CreateReplicationRequestSchema, { tenantId: "tenant-123" }));
  expect(created.id).toBe("r-1");
  expect(keys).toHaveLength(3);
  expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  expect(new Set(keys).size).toBe(1);
  expect(waits).toEqual([1000, 2000]);

  let readKey: string | null | undefined;
  server.use(http.post(url("GetReplication"), ({ request }) => ((readKey = request.headers.get("idempotency-key")), replication())));
  await t.unary(M.getReplication, create(GetReplicationRequestSchema, { id: "r-1" }));
  expect(readKey).toBeNull();
});

test("RESOURCE_EXHAUSTED waits the server's retry_after_seconds; NOT_FOUND is the typed error, not retried", async () => {
  let calls = 0;
  server.use(http.post(url("GetReplication"), () => (calls++ === 0 ? refusal(429, "resource_exhausted", "RATE_LIMIT_EXCEEDED", { retryAfterSeconds: 7 }) : replication())));
  const { t, waits } = transport();
  expect((await t.unary(M.getReplication, create(GetReplicationRequestSchema, { id: "r-1" }))).id).toBe("r-1");
  expect(waits).toEqual([7000]);

  let tries = 0;
  server.use(http.post(url("GetReplication"), () => (tries++, refusal(404, "not_found", "NOT_FOUND"))));
  const missing = await t.unary(M.getReplication, create(GetReplicationRequestSchema, { id: "r-1" })).catch((e: unknown) => e);
  expect(missing).toBeInstanceOf(NotFoundError);
  expect(missing).toMatchObject({ code: "NOT_FOUND", status: 404, requestId: "req-NOT_FOUND", details: { replication_id: "r-1" } });
  expect(tries).toBe(1);

  // Retries run out: the last error, with what the server asked.
  server.use(http.post(url("GetReplication"), () => refusal(429, "resource_exhausted", "RATE_LIMIT_EXCEEDED", { retryAfterSeconds: 3 })));
  const limited = await t.unary(M.getReplication, create(GetReplicationRequestSchema, { id: "r-1" })).catch((e: unknown) => e);
  expect(limited).toBeInstanceOf(RateLimitError);
  expect((limited as RateLimitError).retryAfter).toBe(3);
});
