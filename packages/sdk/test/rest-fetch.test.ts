// The SDK's own request logic against a mock server (msw): the §6 envelope
// becomes the error class of its code with every field; the §6.3 schedule
// (full jitter under min(60 s, 1 s × 2^attempt), five attempts) on 503 and
// network failures; Retry-After on 429; no retry on a verdict (4xx); one
// Idempotency-Key per logical call, the same on each of its retries; the
// caller's abort and deadline end the retries; pages.
import { http, HttpResponse, delay } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import {
  AbortedError,
  ConflictError,
  ConnectionError,
  ConnectionTimeoutError,
  ForbiddenError,
  HeliosDBError,
  InvalidRequestError,
  NotFoundError,
  PagePromise,
  RateLimitError,
  ServiceUnavailableError,
  UnauthorizedError,
  ValidationError,
  type Page,
} from "../src/core/index";
import { restCall, type RestConfig } from "../src/internal/rest-fetch";

const BASE = "http://api.test/v1";
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

/** Every request the mock server saw: method, path and headers. */
let seen: { method: string; path: string; headers: Headers }[] = [];
afterEach(() => void (seen = []));
const record = (request: Request) => void seen.push({ method: request.method, path: new URL(request.url).pathname, headers: request.headers });

/** The waits the retries asked for, on a clock of their own (no real waiting): random() = 1 puts each at its bound. */
function config(options: { random?: number; timeoutMs?: number; deadline?: (now: number) => number } = {}): RestConfig & { waits: number[] } {
  const waits: number[] = [];
  let clock = Date.now();
  return {
    waits,
    baseUrl: BASE,
    headers: () => ({ authorization: "Bearer t0ken" }),
    timeoutMs: options.timeoutMs ?? 5_000,
    retry: {
      random: () => options.random ?? 1,
      now: () => clock,
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
      ...(options.deadline ? { deadline: options.deadline(clock) } : {}),
    },
  };
}

const envelope = (code: string, status: number, headers: Record<string, string> = {}) =>
  HttpResponse.json(
    { error: { code, message: `refused: ${code}`, details: { replication_id: "r-1", max_lag_seconds: 30 }, request_id: `req-${code}`, timestamp: "2025-11-02T10:00:00Z" } },
    { status, headers },
  );

test("the §6 envelope becomes its code's class, with status, code, message, details and request id; a 4xx is not retried", async () => {
  const cases = [
    ["INVALID_REQUEST", 400, InvalidRequestError],
    ["VALIDATION_ERROR", 400, ValidationError],
    ["UNAUTHORIZED", 401, UnauthorizedError],
    ["FORBIDDEN", 403, ForbiddenError],
    ["NOT_FOUND", 404, NotFoundError],
    ["CONFLICT", 409, ConflictError],
  ] as const;
  for (const [code, status, Class] of cases) {
    server.use(http.get(`${BASE}/replications/r-1`, ({ request }) => (record(request), envelope(code, status))));
    const c = config();
    const error = await restCall(c, { method: "GET", path: "/replications/r-1" }).catch((e: unknown) => e);
    expect(error, code).toBeInstanceOf(Class);
    expect(error).toBeInstanceOf(HeliosDBError);
    expect(error).toMatchObject({ code, status, message: `refused: ${code}`, requestId: `req-${code}`, details: { replication_id: "r-1", max_lag_seconds: 30 } });
    expect(seen, code).toHaveLength(1);
    expect(c.waits).toEqual([]);
    seen = [];
  }
});

test("503 is retried on the §6.3 schedule, five attempts in all, and the last error thrown", async () => {
  server.use(http.post(`${BASE}/replications`, ({ request }) => (record(request), envelope("SERVICE_UNAVAILABLE", 503))));
  const c = config();
  const error = await restCall(c, { method: "POST", path: "/replications", body: { tenant_id: "t" } }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ServiceUnavailableError);
  expect(seen).toHaveLength(5);
  // Full jitter at its bound (random() = 1): 1 s × 2^attempt.
  expect(c.waits).toEqual([1000, 2000, 4000, 8000]);
  // Half way (random() = 0.5), and capped at 60 s from the seventh retry on.
  const half = config({ random: 0.5 });
  await restCall({ ...half, retry: { ...half.retry, policy: { maxAttempts: 9, baseDelayMs: 1000, maxDelayMs: 60_000 } } }, { method: "POST", path: "/replications" }).catch(() => undefined);
  expect(half.waits).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
});

test("one Idempotency-Key per logical call, sent again with each retry; a new one for the next call; none on a GET", async () => {
  let failures = 2;
  server.use(
    http.post(`${BASE}/replications`, ({ request }) => {
      record(request);
      return failures-- > 0 ? envelope("SERVICE_UNAVAILABLE", 503) : HttpResponse.json({ id: "r-1" }, { status: 201 });
    }),
    http.get(`${BASE}/replications/r-1`, ({ request }) => (record(request), HttpResponse.json({ id: "r-1" }))),
  );
  const c = config();
  expect(await restCall(c, { method: "POST", path: "/replications", body: { tenant_id: "t" } })).toEqual({ id: "r-1" });
  const keys = seen.map((s) => s.headers.get("idempotency-key"));
  expect(keys).toHaveLength(3);
  expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(new Set(keys).size).toBe(1);
  await restCall(c, { method: "POST", path: "/replications", body: {} });
  expect(seen[3]!.headers.get("idempotency-key")).not.toBe(keys[0]);
  await restCall(c, { method: "GET", path: "/replications/r-1" });
  expect(seen[4]!.headers.get("idempotency-key")).toBeNull();
  // The credentials and the JSON body go with every attempt.
  for (const s of seen) expect(s.headers.get("authorization")).toBe("Bearer t0ken");
  expect(seen[0]!.headers.get("content-type")).toBe("application/json");
});

test("429 waits the Retry-After the server gave (seconds or a date), then succeeds", async () => {
  let refused = 0;
  server.use(
    http.get(`${BASE}/replications/r-1`, ({ request }) => {
      record(request);
      if (refused++ === 0) return envelope("RATE_LIMIT_EXCEEDED", 429, { "Retry-After": "7" });
      if (refused === 2) return envelope("RATE_LIMIT_EXCEEDED", 429, { "Retry-After": new Date(Date.now() + 3_000).toUTCString() });
      return HttpResponse.json({ id: "r-1" });
    }),
  );
  const c = config({ random: 0 });
  expect(await restCall(c, { method: "GET", path: "/replications/r-1" })).toEqual({ id: "r-1" });
  expect(c.waits[0]).toBe(7000);
  // An HTTP date a whole number of seconds away (the date has no fraction): 2–3 s from now.
  expect(c.waits[1]).toBeGreaterThanOrEqual(2000);
  expect(c.waits[1]).toBeLessThanOrEqual(3000);
  // When the retries run out, the error says how long the server asked to wait.
  server.use(http.get(`${BASE}/replications/r-2`, () => envelope("RATE_LIMIT_EXCEEDED", 429, { "Retry-After": "5" })));
  const error = await restCall(config(), { method: "GET", path: "/replications/r-2" }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RateLimitError);
  expect((error as RateLimitError).retryAfter).toBe(5);
});

test("a network failure and a timeout are errors of their own, retried; a body that is no envelope gets its status's code", async () => {
  server.use(http.get(`${BASE}/health`, ({ request }) => (record(request), HttpResponse.error())));
  const c = config();
  const error = await restCall(c, { method: "GET", path: "/health" }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConnectionError);
  expect(error).not.toBeInstanceOf(ConnectionTimeoutError);
  expect(seen).toHaveLength(5);

  seen = [];
  server.use(http.get(`${BASE}/health`, async ({ request }) => (record(request), await delay(500), HttpResponse.json({}))));
  const slow = await restCall({ ...config({ timeoutMs: 30 }), retry: { sleep: async () => undefined, policy: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } } }, { method: "GET", path: "/health" }).catch((e: unknown) => e);
  expect(slow).toBeInstanceOf(ConnectionTimeoutError);
  expect((slow as HeliosDBError).code).toBe("TIMEOUT");
  expect(seen).toHaveLength(2);

  server.use(http.get(`${BASE}/health`, () => new HttpResponse("<html>bad gateway</html>", { status: 502, headers: { "content-type": "text/html" } })));
  const proxy = await restCall(config(), { method: "GET", path: "/health" }).catch((e: unknown) => e);
  expect(proxy).toMatchObject({ status: 502, code: "INTERNAL_ERROR" });
});

test("the caller's abort ends the call and its retries; no retry would start past the deadline", async () => {
  server.use(http.post(`${BASE}/replications`, ({ request }) => (record(request), envelope("SERVICE_UNAVAILABLE", 503))));
  const controller = new AbortController();
  const c: RestConfig = { baseUrl: BASE, headers: () => ({}), timeoutMs: 5_000, retry: { random: () => 1 } };
  const pending = restCall(c, { method: "POST", path: "/replications", signal: controller.signal }).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 100)); // the first attempt failed; the first wait (1 s) is under way
  controller.abort();
  expect(await pending).toBeInstanceOf(AbortedError);
  expect(seen).toHaveLength(1);

  seen = [];
  const near = config({ deadline: (now) => now + 2_500 });
  const error = await restCall(near, { method: "POST", path: "/replications" }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ServiceUnavailableError);
  // 1 s then 2 s would end past the deadline: one wait, two attempts.
  expect(near.waits).toEqual([1000]);
  expect(seen).toHaveLength(2);
});

test("a list is its first page when awaited, every item across pages when iterated, and page by page with pages()", async () => {
  const items = Array.from({ length: 7 }, (_, i) => ({ id: `r-${i + 1}` }));
  server.use(
    http.get(`${BASE}/replications`, ({ request }) => {
      record(request);
      const url = new URL(request.url);
      const page = Number(url.searchParams.get("page") ?? 1);
      const size = Number(url.searchParams.get("page_size") ?? 50);
      const total = url.searchParams.get("tenant_id") === "empty" ? [] : items;
      return HttpResponse.json({ data: total.slice((page - 1) * size, page * size), pagination: { page, page_size: size, total_pages: Math.ceil(total.length / size), total_items: total.length } });
    }),
  );
  type Answer = { data: { id: string }[]; pagination: { page: number; page_size: number; total_pages: number; total_items: number } };
  const list = (tenantId = "t") =>
    new PagePromise<{ id: string }>(async (page) => {
      const a = await restCall<Answer>(config(), { method: "GET", path: "/replications", query: { tenant_id: tenantId, page, page_size: 3 } });
      return { items: a.data, page: a.pagination.page, pageSize: a.pagination.page_size, totalPages: a.pagination.total_pages, totalItems: a.pagination.total_items } satisfies Page<{ id: string }>;
    });

  const first = await list();
  expect(first).toMatchObject({ page: 1, pageSize: 3, totalPages: 3, totalItems: 7 });
  expect(first.items.map((r) => r.id)).toEqual(["r-1", "r-2", "r-3"]);
  expect(seen).toHaveLength(1);

  seen = [];
  const all: string[] = [];
  for await (const r of list()) all.push(r.id);
  expect(all).toEqual(items.map((r) => r.id));
  expect(seen.length).toBe(3);

  const sizes: number[] = [];
  for await (const page of list().pages()) sizes.push(page.items.length);
  expect(sizes).toEqual([3, 3, 1]);

  // A reader that stops early fetches no further page.
  seen = [];
  for await (const r of list()) if (r.id === "r-2") break;
  expect(seen).toHaveLength(1);

  const none: string[] = [];
  for await (const r of list("empty")) none.push(r.id);
  expect(none).toEqual([]);
});

test("attempts running together time out each on its own: a fast one answers, a slow one times out, a caller's abort ends only its own", async () => {
  server.use(
    http.get(`${BASE}/fast`, () => HttpResponse.json({ fast: true })),
    http.get(`${BASE}/slow`, async () => (await delay(2_000), HttpResponse.json({}))),
  );
  const c = { ...config({ timeoutMs: 300 }), retry: { policy: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } } };
  const caller = new AbortController();
  const started = Date.now();
  const [slow, fast, abandoned] = await Promise.all([
    restCall(c, { method: "GET", path: "/slow" }).catch((e: unknown) => e),
    restCall(c, { method: "GET", path: "/fast" }),
    restCall(c, { method: "GET", path: "/slow", signal: caller.signal }).catch((e: unknown) => e),
    new Promise((r) => setTimeout(r, 50)).then(() => caller.abort()),
  ]);
  expect(fast).toEqual({ fast: true });
  expect(slow).toBeInstanceOf(ConnectionTimeoutError);
  expect(abandoned).toBeInstanceOf(AbortedError);
  // Abandoned after its timeout, and long before the slow answer would have come.
  expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  expect(Date.now() - started).toBeLessThan(2_000);
});
