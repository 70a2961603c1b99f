// Rate limits (spec §7) as clients meet them, against two servers sharing
// one control plane: a principal's burst passes exactly, and the next call is
// 429 RATE_LIMIT_EXCEEDED (RESOURCE_EXHAUSTED over gRPC and Connect) with
// Retry-After, the X-RateLimit-* headers and the §6 envelope's
// retry_after_seconds; the bucket is one across servers; it refills by the
// database's clock (moved back here, so no test waits); the tier comes from
// an API key, a JWT's claim, or the default; refused credentials are limited
// by client address; public RPCs are not limited.
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, copyFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConnectError, createClient } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ApiErrorSchema, ReplicationService, type ApiError } from "@heliosdb/replication-proto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startApp, type RunningApp } from "../../src/app";
import { startControlPlane, type ControlPlane } from "../../src/testing/control-plane";
import { loadSigningKey } from "../../src/transport/auth";
import { localKid } from "../../src/transport/key-ring";
import type { RateLimitOptions } from "../../src/transport/rate-limit";

// Small buckets refilled a token a minute or slower: no token comes back while a test runs, unless the test moves the clock.
const LIMITS: RateLimitOptions = {
  tiers: { Free: { perMinute: 1, burst: 3 }, Standard: { perMinute: 2, burst: 5 }, Premium: { perMinute: 3, burst: 7 } },
  principals: { "big-customer": { perMinute: 4, burst: 9 }, admin: { perMinute: 1000, burst: 1000 } },
};
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

let cp: ControlPlane;
const dirs: string[] = [];
let a: RunningApp;
let b: RunningApp;
let grpcA: grpc.Client;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  cp = await startControlPlane();
  for (let i = 0; i < 2; i++) dirs.push(mkdtempSync(join(tmpdir(), "heliosdb-rate-limits-")));
  const start = (dataDir: string) => startApp({ db: cp.pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 500, rateLimits: LIMITS, log: () => undefined });
  a = await start(dirs[0]!);
  copyFileSync(join(dirs[0]!, "master.key"), join(dirs[1]!, "master.key"));
  b = await start(dirs[1]!);
  const definition = protoLoader.loadSync("heliosdb/replication/v1/replication.proto", {
    includeDirs: [join(ROOT, "proto"), join(ROOT, "node_modules/google-proto-files")],
  });
  const v1 = (grpc.loadPackageDefinition(definition) as never as { heliosdb: { replication: { v1: Record<string, grpc.ServiceClientConstructor> } } }).heliosdb.replication.v1;
  grpcA = new v1.ReplicationService!(`127.0.0.1:${a.ports.grpc}`, grpc.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  grpcA?.close();
  await a?.close();
  await b?.close();
  await cp?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

// A token of server A's data-directory key (every server of the control plane verifies it), as `sub`, with any extra claims.
function token(sub: string, extra: Record<string, unknown> = {}): Promise<string> {
  const key = loadSigningKey(dirs[0]!);
  return new SignJWT({ iss: "heliosdb.com", aud: "heliosdb-api", sub, exp: now() + 3600, roles: ["Admin"], ...extra })
    .setProtectedHeader({ alg: "HS256", kid: localKid(key) })
    .sign(key);
}

interface RestAnswer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function list(app: RunningApp, headers: Record<string, string>): Promise<RestAnswer> {
  const res = await fetch(`${app.urls.rest}/replications`, { headers });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

// Calls until the first refusal (at most `max`): the answers in order.
async function untilRefused(call: () => Promise<RestAnswer>, max = 30): Promise<RestAnswer[]> {
  const answers: RestAnswer[] = [];
  while (answers.length < max) {
    const answer = await call();
    answers.push(answer);
    if (answer.status !== 200) break;
  }
  return answers;
}

// A 429 as §7.3 and §6 describe it, with the headers of §7.1.
function expectRefusal(answer: RestAnswer, perMinute: number): void {
  expect(answer.status).toBe(429);
  const retryAfter = Number(answer.headers.get("retry-after"));
  // A token a minute at most: one comes back within 60 s (less, by what refilled since the bucket was made).
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(Math.ceil(60 / perMinute));
  expect(answer.headers.get("x-ratelimit-limit")).toBe(String(perMinute));
  expect(answer.headers.get("x-ratelimit-remaining")).toBe("0");
  expect(Number(answer.headers.get("x-ratelimit-reset"))).toBeGreaterThan(now());
  expect(answer.body.error).toMatchObject({ code: "RATE_LIMIT_EXCEEDED", message: `Rate limit exceeded. Retry after ${retryAfter} seconds.`, retry_after_seconds: retryAfter });
  expect(answer.body.error.request_id).toBe(answer.headers.get("x-request-id"));
  expect(answer.body.error.timestamp).toMatch(/^\d{4}-/);
}

describe("one server", () => {
  test("REST: exactly the burst passes, each answer counts down, then 429 with Retry-After and the envelope", async () => {
    const headers = { authorization: `Bearer ${await token("rest-caller")}` };
    const answers = await untilRefused(() => list(a, headers));
    // Standard (the default tier: the token names none) is 5 here.
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200, 200, 200, 429]);
    expect(answers.slice(0, 5).map((x) => x.headers.get("x-ratelimit-remaining"))).toEqual(["4", "3", "2", "1", "0"]);
    for (const answer of answers.slice(0, 5)) expect(answer.headers.get("x-ratelimit-limit")).toBe("2");
    expectRefusal(answers[5]!, 2);
    // Errors of a counted call carry the headers too (another principal of the tenant: its own bucket).
    const missing = await fetch(`${a.urls.rest}/replications/00000000-0000-4000-8000-000000000000`, { headers: { authorization: `Bearer ${await token("rest-caller-2")}` } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-ratelimit-remaining")).toBe("4");
  });

  test("gRPC (grpc-js): exactly the burst passes with the metadata, then RESOURCE_EXHAUSTED with the §6 detail", async () => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${await token("grpc-caller", { tier: "Free" })}`);
    const calls: { error: grpc.ServiceError | null; metadata: grpc.Metadata }[] = [];
    for (let i = 0; i < 4; i++) {
      calls.push(
        await new Promise((resolve) => {
          let received = new grpc.Metadata();
          const call = (grpcA as unknown as Record<string, Function>).ListReplications!.call(grpcA, {}, metadata, (error: grpc.ServiceError | null) =>
            resolve({ error, metadata: error?.metadata ?? received }),
          ) as grpc.ClientUnaryCall;
          call.on("metadata", (m) => (received = m));
        }),
      );
    }
    // The token's tier claim (Free) is 3 here.
    expect(calls.map((c) => c.error?.code ?? 0)).toEqual([0, 0, 0, grpc.status.RESOURCE_EXHAUSTED]);
    expect(calls.slice(0, 3).map((c) => c.metadata.get("x-ratelimit-remaining")[0])).toEqual(["2", "1", "0"]);
    const refused = calls[3]!;
    const detail = apiErrorIn(refused.error!.metadata);
    const retryAfter = Number(refused.metadata.get("retry-after")[0]);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(detail).toMatchObject({ code: "RATE_LIMIT_EXCEEDED", retryAfterSeconds: retryAfter });
    expect(detail?.requestId).toMatch(/^req-/);
    expect(refused.metadata.get("x-ratelimit-limit")[0]).toBe("1");
    expect(refused.metadata.get("x-ratelimit-remaining")[0]).toBe("0");
  });

  test("Connect: exactly the burst passes with the headers, then ResourceExhausted with the §6 detail", async () => {
    const client = createClient(ReplicationService, createConnectTransport({ baseUrl: `http://127.0.0.1:${a.ports.http}`, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${await token("connect-caller", { tier: "Premium" })}` };
    const remaining: string[] = [];
    let refusal: ConnectError | undefined;
    for (let i = 0; i < 10 && !refusal; i++) {
      try {
        await client.listReplications({}, { headers, onHeader: (h) => void remaining.push(h.get("x-ratelimit-remaining") ?? "") });
      } catch (e) {
        refusal = ConnectError.from(e);
      }
    }
    // Premium is 7 here.
    expect(remaining).toEqual(["6", "5", "4", "3", "2", "1", "0"]);
    expect(refusal?.code).toBe(8); // ResourceExhausted
    const detail = refusal!.findDetails(ApiErrorSchema)[0];
    expect(detail).toMatchObject({ code: "RATE_LIMIT_EXCEEDED", retryAfterSeconds: Number(refusal!.metadata.get("retry-after")) });
    expect(refusal!.metadata.get("x-ratelimit-limit")).toBe("3");
  });

  test("the bucket refills by its own clock: a minute later, exactly one more call (1/min)", async () => {
    const headers = { authorization: `Bearer ${await token("refill-caller", { tier: "Free" })}` };
    expect((await untilRefused(() => list(a, headers))).map((x) => x.status)).toEqual([200, 200, 200, 429]);
    const moved = await cp.pool.query("UPDATE rate_limits SET updated_at = updated_at - interval '60 seconds' WHERE key LIKE '%refill-caller%'");
    expect(moved.rowCount).toBe(1);
    expect((await untilRefused(() => list(a, headers))).map((x) => x.status)).toEqual([200, 429]);
    // Longer than burst / rate: full again, and no fuller.
    await cp.pool.query("UPDATE rate_limits SET updated_at = updated_at - interval '1 hour' WHERE key LIKE '%refill-caller%'");
    expect((await untilRefused(() => list(a, headers))).map((x) => x.status)).toEqual([200, 200, 200, 429]);
  });

  test("an API key's tier, and a principal's own bucket", async () => {
    const admin = { authorization: `Bearer ${await token("admin")}` };
    const made = await fetch(`${a.urls.rest}/api-keys`, {
      method: "POST",
      headers: { ...admin, "content-type": "application/json" },
      body: JSON.stringify({ name: "free key", roles: ["Viewer"], tier: "Free" }),
    });
    expect(made.status).toBe(201);
    const key = (await made.json()).secret as string;
    expect((await untilRefused(() => list(a, { "x-api-key": key }))).map((x) => x.status)).toEqual([200, 200, 200, 429]);
    // Configured for its subject ("big-customer"): 9, whatever the tier.
    const big = { authorization: `Bearer ${await token("big-customer", { tier: "Free" })}` };
    const answers = await untilRefused(() => list(a, big));
    expect(answers.length).toBe(10);
    expectRefusal(answers[9]!, 4);
  });

  test("refused credentials are limited by client address; public RPCs are not limited", async () => {
    const bad = { authorization: "Bearer not-a-token" };
    const answers = await untilRefused(async () => {
      const answer = await list(a, bad);
      return answer.status === 401 ? { ...answer, status: 200 } : answer;
    });
    // The address's bucket is Free's (3 here): three 401s, then 429.
    expect(answers.length).toBe(4);
    expect(answers.slice(0, 3).map((x) => x.body.error.code)).toEqual(["UNAUTHORIZED", "UNAUTHORIZED", "UNAUTHORIZED"]);
    expect(answers.slice(0, 3).map((x) => x.headers.get("x-ratelimit-remaining"))).toEqual(["2", "1", "0"]);
    expectRefusal(answers[3]!, 1);
    // A valid credential from the same address has its own bucket.
    expect((await list(a, { authorization: `Bearer ${await token("same-address")}` })).status).toBe(200);
    for (let i = 0; i < 12; i++) {
      const health = await fetch(`${a.urls.rest}/health`);
      expect(health.status).toBe(200);
      expect(health.headers.get("x-ratelimit-limit")).toBeNull();
    }
  });

  test("a WebSocket upgrade counts as a call of its principal, and a refused one against its address", async () => {
    const free = await token("ws-caller", { tier: "Free" });
    // 501 (the WebSocket API's milestone) while the bucket holds a token.
    const answers: RestAnswer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await upgrade(a, `/v1/ws?token=${free}`));
    // The handshake while the bucket holds a token.
    expect(answers.map((x) => x.status)).toEqual([101, 101, 101, 429]);
    expectRefusal(answers[3]!, LIMITS.tiers!.Free!.perMinute);
    const refused = await upgrade(a, "/v1/ws?token=not-a-token");
    // The address's bucket was emptied by the test before: past it, 429 rather than 401.
    expectRefusal(refused, LIMITS.tiers!.Free!.perMinute);
  });
});

describe("OAuth endpoints", () => {
  test("every POST (a secret checked) counts against the client's address: past its bucket, 429 before any secret is checked", async () => {
    // A deleted bucket is a full one: this test starts with the address's whole burst.
    await cp.pool.query("DELETE FROM rate_limits WHERE key LIKE 'address:%'");
    const guess = (secret: string) =>
      fetch(`http://127.0.0.1:${a.ports.http}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: randomUUID(), client_secret: secret }),
      }).then(async (res) => ({ status: res.status, headers: res.headers, body: await res.json() }) as RestAnswer);
    const answers: RestAnswer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await guess(`guess-${i}`));
    // Free's burst (3 here): three refusals of the client, each counted down, then 429.
    expect(answers.slice(0, 3).map((x) => [x.status, x.body.error, x.headers.get("x-ratelimit-remaining")])).toEqual([
      [401, "invalid_client", "2"],
      [401, "invalid_client", "1"],
      [401, "invalid_client", "0"],
    ]);
    expectRefusal(answers[3]!, LIMITS.tiers!.Free!.perMinute);
    // The login form's POST from that address: a page saying so, with Retry-After.
    const login = await fetch(`http://127.0.0.1:${a.ports.http}/oauth/authorize`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username: "someone", password: "a guess" }),
    });
    expect(login.status).toBe(429);
    expect(login.headers.get("content-type")).toMatch(/^text\/html/);
    expect(Number(login.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await login.text()).toContain("Rate limit exceeded");
    // Discovery reads nothing secret: not limited.
    expect((await fetch(`http://127.0.0.1:${a.ports.http}/.well-known/oauth-authorization-server`)).status).toBe(200);
  });
});

describe("two servers sharing the control plane", () => {
  test("calls alternated between them: exactly the burst passes in total", async () => {
    const headers = { authorization: `Bearer ${await token("two-servers")}` };
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await list(i % 2 === 0 ? a : b, headers)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
  });

  test("calls all at once on both: exactly the burst passes in total", async () => {
    const headers = { authorization: `Bearer ${await token("two-servers-at-once", { tier: "Premium" })}` };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => list(i % 2 === 0 ? a : b, headers)));
    expect(answers.filter((x) => x.status === 200).length).toBe(7);
    expect(answers.filter((x) => x.status === 429).length).toBe(13);
    // Each pass saw a different count of tokens left.
    const remaining = answers.filter((x) => x.status === 200).map((x) => Number(x.headers.get("x-ratelimit-remaining")));
    expect(remaining.sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});

function apiErrorIn(metadata: grpc.Metadata): ApiError | undefined {
  const bin = metadata.get("grpc-status-details-bin")[0] as Buffer | undefined;
  if (!bin) return undefined;
  return findTrailerError(new Headers({ "grpc-status": "8", "grpc-status-details-bin": bin.toString("base64").replace(/=+$/, "") }))?.findDetails(ApiErrorSchema)[0];
}

// A WebSocket handshake; the server's answer (101 when it upgrades: the client then closes the socket).
function upgrade(app: RunningApp, path: string): Promise<RestAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: app.ports.http,
      path,
      agent: false,
      headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": randomBytes(16).toString("base64") },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode!, headers: new Headers(), body: {} });
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      const headers = new Headers();
      for (const [name, value] of Object.entries(res.headers)) if (typeof value === "string") headers.set(name, value);
      res.on("end", () => resolve({ status: res.statusCode!, headers, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.end();
  });
}
