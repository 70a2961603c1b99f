// Credentials as a hostile client meets them, on every protocol (REST,
// gRPC with grpc-js, gRPC-web, Connect), against two servers sharing one
// control plane: every bad credential is refused with 401 UNAUTHORIZED (or
// 403 FORBIDDEN naming the permission), the same on every protocol, and
// audited; API keys work, are revoked at once on the other server, rotate
// with an overlap, and never hold more than their creator; another tenant's
// key is NOT_FOUND; and no secret the test used appears in a log or in a
// response other than the one that made it.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { SignJWT, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startApp, type RunningApp } from "../../src/app";
import type { RateLimitOptions } from "../../src/transport/rate-limit";
import { startControlPlane, type ControlPlane } from "../../src/testing/control-plane";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { ERRORS, type ErrorCode } from "../../src/transport/errors";
import { localKid } from "../../src/transport/key-ring";
import { Clients, PROTOCOLS, type Outcome, type Protocol, type Rpc } from "./protocols";

let cp: ControlPlane;
const dirs: string[] = [];
let a: RunningApp;
let b: RunningApp;
let onA: Clients;
let onB: Clients;
let admin: string;
const logs: string[] = [];
/** Every answer the clients received, with the secret it was allowed to hold (the one it made). */
const answers: { raw: string; made?: string }[] = [];
/** Every secret the test used. */
const secrets: string[] = [];

const now = () => Math.floor(Date.now() / 1000);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  cp = await startControlPlane();
  // Two servers with their own data directories (and so their own jwt.key), sharing the master key as they must.
  for (let i = 0; i < 2; i++) dirs.push(mkdtempSync(join(tmpdir(), "heliosdb-credentials-")));
  loadSigningKey(dirs[0]!);
  const start = (dataDir: string, rateLimits?: RateLimitOptions) =>
    startApp({ db: cp.pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 500, ...(rateLimits ? { rateLimits } : {}), log: (m) => void logs.push(m) });
  a = await start(dirs[0]!);
  copyFileSync(join(dirs[0]!, "master.key"), join(dirs[1]!, "master.key"));
  // B limits rates: a call's rate-limit decision is then the round trip that confirms its API key (transport/auth.ts).
  const plenty = { perMinute: 1_000_000, burst: 1_000_000 };
  b = await start(dirs[1]!, { tiers: { Standard: plenty, Free: plenty } });
  onA = new Clients(a);
  onB = new Clients(b);
  admin = await issueToken(loadSigningKey(dirs[0]!), { roles: ["Admin"], subject: "admin" });
  secrets.push(admin, decodeURIComponent(new URL(cp.url()).password), ...dirs.flatMap((d) => ["jwt.key", "master.key"].map((f) => readFileSync(join(d, f), "utf8").trim())));
}, 120_000);

afterAll(async () => {
  onA?.close();
  onB?.close();
  await a?.close();
  await b?.close();
  await cp?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

// A call, its answer kept for the leak check.
async function call(on: Clients, protocol: Protocol, rpc: Rpc, request: Record<string, unknown>, headers: Record<string, string>): Promise<Outcome> {
  const outcome = await on.call(protocol, rpc, request, headers);
  answers.push({ raw: outcome.raw, ...(typeof outcome.body?.secret === "string" ? { made: outcome.body.secret } : {}) });
  return outcome;
}

// An API key made by the admin over REST on server A; resolves its id and secret.
async function createKey(request: Record<string, unknown>, token = admin): Promise<{ id: string; secret: string }> {
  const made = await call(onA, "rest", "createApiKey", { name: "test key", ...request }, bearer(token));
  expect(made.code, made.message).toBe("OK");
  const secret = made.body!.secret as string;
  secrets.push(secret);
  return { id: (made.body!.api_key as { key_id: string }).key_id, secret };
}

// A token signed with server A's data-directory key, with exactly these claims and header fields.
async function signed(claims: JWTPayload, header: Record<string, unknown> = {}, key: Uint8Array = loadSigningKey(dirs[0]!)): Promise<string> {
  const token = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: localKid(loadSigningKey(dirs[0]!)), ...header }).sign(key);
  secrets.push(token);
  return token;
}
const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: "heliosdb.com", aud: "heliosdb-api", sub: "mallory", exp: now() + 3600, roles: ["Admin"], ...extra });

// The outcome agrees with the §6 table on its protocol: REST's HTTP status, the others' gRPC code.
function expectRefused(outcome: Outcome, code: ErrorCode, message: string | RegExp, requestId: string, label: string): void {
  expect(outcome.code, `${label}: ${outcome.message}`).toBe(code);
  if (typeof message === "string") expect(outcome.message, label).toBe(message);
  else expect(outcome.message, label).toMatch(message);
  expect(outcome.requestId, label).toBe(requestId);
  if (outcome.status !== undefined) expect(outcome.status, label).toBe(ERRORS[code].http);
  else expect(outcome.grpcCode, label).toBe(ERRORS[code].grpc);
}

describe("the servers' own tokens", () => {
  test("a token signed with either server's data-directory key works on both", async () => {
    const fromB = await issueToken(loadSigningKey(dirs[1]!), { roles: ["Admin"], subject: "from-b" });
    secrets.push(fromB);
    for (const [on, token] of [[onA, fromB], [onB, admin]] as const) {
      expect((await call(on, "rest", "listApiKeys", {}, bearer(token))).code).toBe("OK");
    }
  });
});

describe("the attack matrix: every protocol, every bad credential", () => {
  test("each is refused with UNAUTHORIZED (or FORBIDDEN naming the permission) and the request id, and audited", async () => {
    const revoked = await createKey({ roles: ["Admin"] });
    const expiresAt = Date.now() + 1500;
    const expiring = await createKey({ roles: ["Admin"], expiresAt: new Date(expiresAt).toISOString() });
    // Used once on B (so that B keeps it), then revoked on A: B refuses it at once below.
    expect((await call(onB, "grpc", "listApiKeys", {}, { "x-api-key": revoked.secret })).code).toBe("OK");
    expect((await call(onA, "rest", "listApiKeys", {}, { "x-api-key": expiring.secret })).code).toBe("OK");
    const revoking = await fetch(`${a.urls.rest}/api-keys/${revoked.id}/revoke`, { method: "POST", headers: bearer(admin) });
    expect(revoking.status).toBe(200);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims())).toString("base64url")}.`;
    const viewer = await issueToken(loadSigningKey(dirs[0]!), { roles: ["Viewer"], subject: "viewer" });
    const readerOnly = await issueToken(loadSigningKey(dirs[0]!), { roles: [], permissions: ["replication:read"], subject: "reader" });
    secrets.push(viewer, readerOnly, none);
    await waitFor(() => Date.now() > expiresAt + 50, "the key's expiry");
    const cases: [string, Record<string, string>, ErrorCode, string | RegExp, Rpc?][] = [
      ["none", {}, "UNAUTHORIZED", /^missing credentials/],
      ["garbage", bearer("garbage"), "UNAUTHORIZED", "the token is malformed"],
      ["basic", { authorization: "Basic YWRtaW46YWRtaW4=" }, "UNAUTHORIZED", "the Authorization header must be Bearer <token>"],
      ["alg-none", bearer(none), "UNAUTHORIZED", `the token's algorithm "none" is not accepted; use HS256, RS256 or ES256`],
      ["wrong-key", bearer(await signed(claims(), {}, randomBytes(32))), "UNAUTHORIZED", "the token's signature is not valid"],
      ["no-exp", bearer(await signed(claims({ exp: undefined }))), "UNAUTHORIZED", "the token has no exp claim"],
      ["expired", bearer(await signed(claims({ exp: now() - 3600 }))), "UNAUTHORIZED", "the token has expired"],
      ["not-yet", bearer(await signed(claims({ nbf: now() + 3600 }))), "UNAUTHORIZED", "the token is not valid yet (nbf)"],
      ["wrong-iss", bearer(await signed(claims({ iss: "https://evil.example" }))), "UNAUTHORIZED", "the token's issuer is not trusted"],
      ["wrong-aud", bearer(await signed(claims({ aud: "another-api" }))), "UNAUTHORIZED", "the token's audience is not accepted"],
      ["tenant-empty", bearer(await signed(claims({ tenant_id: "" }))), "UNAUTHORIZED", "the token's tenant claim (tenant_id) must be a non-empty string"],
      ["tenant-number", bearer(await signed(claims({ tenant_id: 123 }))), "UNAUTHORIZED", "the token's tenant claim (tenant_id) must be a non-empty string"],
      ["key-garbage", { "x-api-key": "letmein" }, "UNAUTHORIZED", "the API key is malformed"],
      ["key-unknown", { "x-api-key": `hdb_${randomBytes(32).toString("base64url")}` }, "UNAUTHORIZED", "the API key is not valid"],
      ["key-revoked", { "x-api-key": revoked.secret }, "UNAUTHORIZED", "the API key was revoked"],
      ["key-expired", { "x-api-key": expiring.secret }, "UNAUTHORIZED", "the API key has expired"],
      ["viewer-mutating", bearer(viewer), "FORBIDDEN", "this call needs the permission apikey:manage", "createApiKey"],
      ["missing-permission", bearer(readerOnly), "FORBIDDEN", "this call needs the permission apikey:read"],
    ];
    for (const protocol of PROTOCOLS) {
      for (const [name, headers, code, message, rpc] of cases) {
        const requestId = `atk-${name}-${protocol}`;
        const outcome = await call(onB, protocol, rpc ?? "listApiKeys", rpc ? { name: "x", roles: ["Viewer"] } : {}, { ...headers, "x-request-id": requestId });
        expectRefused(outcome, code, message, requestId, `${protocol} ${name}`);
      }
    }
    // Every refusal is in the audit log: the call, the outcome, the request id, the client's address; the key's id, never a secret.
    const events = new Map<string, Record<string, string>>();
    await waitFor(async () => {
      for (const outcome of ["UNAUTHORIZED", "FORBIDDEN"]) {
        for (let page = 1; ; page++) {
          const list = await fetch(`${a.urls.rest}/audit-events?outcome=${outcome}&page_size=100&page=${page}`, { headers: bearer(admin) });
          const body = (await list.json()) as { data: Record<string, string>[]; pagination: { total_pages: number } };
          for (const e of body.data) events.set(e.request_id!, e);
          if (page >= body.pagination.total_pages) break;
        }
      }
      return events.size >= cases.length * PROTOCOLS.length;
    }, "the refusals in the audit log");
    for (const protocol of PROTOCOLS) {
      for (const [name, , code, , rpc] of cases) {
        const event = events.get(`atk-${name}-${protocol}`);
        expect(event, `${protocol} ${name}`).toMatchObject({ outcome: code, rpc: rpc === "createApiKey" ? "ApiKeyService.CreateApiKey" : "ApiKeyService.ListApiKeys" });
        expect(event!.client_address, `${protocol} ${name}`).toMatch(/127\.0\.0\.1$/);
      }
      expect(events.get(`atk-key-revoked-${protocol}`)).toMatchObject({ credential_type: "api_key", credential_id: revoked.id });
      expect(events.get(`atk-viewer-mutating-${protocol}`)).toMatchObject({ principal: "viewer", credential_type: "jwt" });
      expect(events.get(`atk-expired-${protocol}`)!.credential_id).toMatch(/^sha256:[0-9a-f]{16}$/);
    }
  }, 120_000);
});

describe("API keys", () => {
  test("a key works on every protocol; its secret is in the create response only; its use is recorded", async () => {
    const key = await createKey({ roles: [], permissions: ["apikey:read"], tier: "Premium" });
    for (const protocol of PROTOCOLS) {
      const listed = await call(onB, protocol, "listApiKeys", {}, { "x-api-key": key.secret });
      expect(listed.code, `${protocol}: ${listed.message}`).toBe("OK");
      expect(listed.raw).toContain(key.id);
    }
    const got = await call(onA, "rest", "getApiKey", { keyId: key.id }, bearer(admin));
    expect(got.body).toMatchObject({ key_id: key.id, prefix: key.secret.slice(0, 12), tier: "Premium", status: "Active", permissions: ["apikey:read"], created_by: "admin" });
    expect(got.body!.last_used_at).toEqual(expect.any(String));
    expect(got.raw).not.toContain(key.secret.slice(12));
    // Used again on both servers within the minute: last_used_at is not written again.
    for (const on of [onA, onB]) expect((await call(on, "rest", "listApiKeys", {}, { "x-api-key": key.secret })).code).toBe("OK");
    expect((await call(onA, "rest", "getApiKey", { keyId: key.id }, bearer(admin))).body!.last_used_at).toBe(got.body!.last_used_at);
  });

  test("a key revoked on one server is refused by the other at once", async () => {
    for (const protocol of PROTOCOLS) {
      const key = await createKey({ roles: ["Viewer"], permissions: ["apikey:read"] });
      // B has checked (and keeps) the key just before A revokes it.
      expect((await call(onB, protocol, "listApiKeys", {}, { "x-api-key": key.secret })).code).toBe("OK");
      const revoked = await call(onA, protocol, "listApiKeys", {}, bearer(admin)).then(() =>
        fetch(`${a.urls.rest}/api-keys/${key.id}/revoke`, { method: "POST", headers: bearer(admin) }).then((r) => r.json()),
      );
      expect(revoked).toMatchObject({ key_id: key.id, status: "Revoked" });
      const after = await call(onB, protocol, "listApiKeys", {}, { "x-api-key": key.secret, "x-request-id": `revoked-at-once-${protocol}` });
      expectRefused(after, "UNAUTHORIZED", "the API key was revoked", `revoked-at-once-${protocol}`, protocol);
    }
  });

  // B confirms a kept key by its rate-limit decision's round trip, A (no rate limits) by a round trip of its own.
  for (const [name, revoker, server] of [["B", () => a, () => b], ["A", () => b, () => a]] as const) {
    test(`even when ${name} hears of the revocation late, ${name} does not accept the key once it is revoked, and audits the refusal once`, async () => {
      const key = await createKey({ permissions: ["apikey:read", "apikey:manage"] });
      const clients = server() === a ? onA : onB;
      expect((await call(clients, "rest", "listApiKeys", {}, { "x-api-key": key.secret })).code).toBe("OK");
      // The server's LISTEN session stops reading: the revocation's notification waits in its socket.
      const socket = (server().credentials.notices as unknown as { listener: { connection: { stream: { pause(): void; resume(): void } } } }).listener.connection.stream;
      socket.pause();
      try {
        expect((await fetch(`${revoker().urls.rest}/api-keys/${key.id}/revoke`, { method: "POST", headers: bearer(admin) })).status).toBe(200);
        const requestId = `revoked-late-${name}`;
        // A mutating call: it must not run for a key revoked before it arrived.
        const after = fetch(`${server().urls.rest}/api-keys`, {
          method: "POST",
          headers: { "x-api-key": key.secret, "content-type": "application/json", "x-request-id": requestId },
          body: JSON.stringify({ name: "made by a revoked key", roles: ["Viewer"] }),
        });
        setTimeout(() => socket.resume(), 300);
        const res = await after;
        expect(res.status).toBe(401);
        expect((await res.json()).error).toMatchObject({ code: "UNAUTHORIZED", message: "the API key was revoked", request_id: requestId });
      } finally {
        socket.resume();
      }
      // Every event of the call was queued before it was answered.
      await server().credentials.audit.flush();
      const { rows } = await cp.pool.query("SELECT outcome FROM audit_events WHERE request_id = $1", [`revoked-late-${name}`]);
      expect(rows).toEqual([{ outcome: "UNAUTHORIZED" }]);
      expect((await cp.pool.query("SELECT count(*)::int AS n FROM api_keys WHERE name = 'made by a revoked key'")).rows[0].n).toBe(0);
    });
  }

  test("rotation: the new key works, the old one for the overlap only (0: refused at once)", async () => {
    const key = await createKey({ permissions: ["apikey:read"] });
    const rotate = async (id: string, overlap: number) => {
      const res = await fetch(`${a.urls.rest}/api-keys/${id}/rotate`, { method: "POST", headers: { ...bearer(admin), "content-type": "application/json" }, body: JSON.stringify({ overlap_seconds: overlap }) });
      const text = await res.text();
      const body = JSON.parse(text);
      answers.push({ raw: text, made: body.secret });
      secrets.push(body.secret);
      return { status: res.status, body };
    };
    const soft = await rotate(key.id, 3600);
    expect(soft.status).toBe(200);
    expect(soft.body.api_key).toMatchObject({ rotated_from_key_id: key.id, status: "Active", permissions: ["apikey:read"] });
    expect(soft.body.previous).toMatchObject({ key_id: key.id, replaced_by_key_id: soft.body.api_key.key_id, status: "Active" });
    expect(Date.parse(soft.body.previous.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    for (const secret of [key.secret, soft.body.secret]) expect((await call(onB, "connect", "listApiKeys", {}, { "x-api-key": secret })).code).toBe("OK");
    expect((await rotate(key.id, 60)).body.error).toMatchObject({ code: "CONFLICT", message: `API key ${key.id} was already rotated; create a new key instead` });
    const hard = await rotate(soft.body.api_key.key_id, 0);
    expect(hard.status).toBe(200);
    expect((await call(onB, "grpc", "listApiKeys", {}, { "x-api-key": soft.body.secret })).message).toBe("the API key has expired");
    expect((await call(onB, "grpc", "listApiKeys", {}, { "x-api-key": hard.body.secret })).code).toBe("OK");
    expect((await rotate(key.id, 99_999_999)).body.error).toMatchObject({ code: "VALIDATION_ERROR", details: { violations: [{ field: "overlap_seconds" }] } });
  });

  test("no key holds more than its creator; a tenant's caller makes and sees its tenant's keys only, another's are NOT_FOUND everywhere", async () => {
    const manager = await issueToken(loadSigningKey(dirs[0]!), { roles: [], permissions: ["apikey:manage", "apikey:read", "replication:read"], tenantId: "tenant-123", subject: "t123-manager" });
    secrets.push(manager);
    const beyond = await call(onA, "rest", "createApiKey", { roles: ["Operator"] }, bearer(manager));
    expect(beyond).toMatchObject({ code: "FORBIDDEN", status: 403 });
    expect(beyond.message).toMatch(/^a key cannot hold a permission its creator lacks: .*replication:create/);
    expect((await call(onA, "grpc", "createApiKey", { permissions: ["replication:read"], tenantId: "tenant-456" }, bearer(manager))).code).toBe("FORBIDDEN");
    const own = await createKey({ permissions: ["replication:read"] }, manager);
    expect((await call(onA, "rest", "getApiKey", { keyId: own.id }, bearer(manager))).body).toMatchObject({ tenant_id: "tenant-123" });
    const other = await createKey({ permissions: ["apikey:read"], tenantId: "tenant-456" });
    for (const protocol of PROTOCOLS) {
      const got = await call(onB, protocol, "getApiKey", { keyId: other.id }, { ...bearer(manager), "x-request-id": `other-tenant-${protocol}` });
      expectRefused(got, "NOT_FOUND", `no API key ${other.id}`, `other-tenant-${protocol}`, protocol);
      const listed = await call(onB, protocol, "listApiKeys", {}, bearer(manager));
      expect(listed.raw, protocol).toContain(own.id);
      expect(listed.raw, protocol).not.toContain(other.id);
    }
    // A tenant's key reads its tenant only, whatever it asks.
    expect((await call(onB, "connect", "listApiKeys", { tenantId: "tenant-123" }, { "x-api-key": other.secret })).code).toBe("FORBIDDEN");
  });
});

describe("tenants", () => {
  test("another tenant's replication is NOT_FOUND on every protocol; an operator's token sees it", async () => {
    const { create } = await import("@bufbuild/protobuf");
    const { ConnectionInfoSchema, ReplicationConfigSchema } = await import("@heliosdb/replication-proto");
    const { ReplicationStore } = await import("../../src/store/replications");
    const id = "650e8400-e29b-41d4-a716-44665544aa01";
    const side = (database: string) => create(ConnectionInfoSchema, { connectionId: "550e8400-e29b-41d4-a716-446655440001", database, schema: "public" });
    await new ReplicationStore(cp.pool).insert({
      id, tenantId: "tenant-456", source: side("tenant_456_db"), target: side("tenant_456_copy"), config: create(ReplicationConfigSchema, {}),
      desired: "created", status: "Initializing", estimatedDataSizeGb: null, estimatedInitialSyncDurationHours: null,
    });
    const tenantAdmin = await issueToken(loadSigningKey(dirs[0]!), { roles: ["Admin"], tenantId: "tenant-123", subject: "t123" });
    secrets.push(tenantAdmin);
    for (const protocol of PROTOCOLS) {
      const got = await call(onB, protocol, "getReplication", { id }, { ...bearer(tenantAdmin), "x-request-id": `other-replication-${protocol}` });
      expectRefused(got, "NOT_FOUND", `no replication ${id}`, `other-replication-${protocol}`, protocol);
      expect((await call(onB, protocol, "getReplication", { id }, bearer(admin))).code, protocol).toBe("OK");
    }
  });
});

describe("the audit log", () => {
  test("every mutating call is recorded: who, with which credential, what, the outcome, the request id, the address", async () => {
    const made = await call(onB, "grpc", "createApiKey", { name: "audited", permissions: ["apikey:read"] }, { ...bearer(admin), "x-request-id": "audited-create" });
    expect(made.code).toBe("OK");
    secrets.push(made.body!.secret as string);
    answers[answers.length - 1]!.made = made.body!.secret as string;
    const jti = JSON.parse(Buffer.from(admin.split(".")[1]!, "base64url").toString("utf8")).jti as string;
    const res = await fetch(`${a.urls.rest}/audit-events?rpc=ApiKeyService.CreateApiKey&principal=admin&page_size=100`, { headers: bearer(admin) });
    const events = ((await res.json()) as { data: Record<string, unknown>[] }).data;
    expect(events.find((e) => e.request_id === "audited-create")).toMatchObject({
      principal: "admin",
      credential_type: "jwt",
      credential_id: jti,
      rpc: "ApiKeyService.CreateApiKey",
      resource: (made.body!.apiKey as { keyId: string }).keyId,
      outcome: "OK",
      client_address: expect.stringMatching(/127\.0\.0\.1$/),
    });
    // Reads are not recorded; failed changes are, with their code.
    expect(events.every((e) => e.rpc === "ApiKeyService.CreateApiKey")).toBe(true);
    const failed = await call(onA, "rest", "createApiKey", { roles: ["Emperor"] }, { ...bearer(admin), "x-request-id": "audited-failure" });
    expect(failed.code).toBe("VALIDATION_ERROR");
    await waitFor(async () => {
      const r = await fetch(`${a.urls.rest}/audit-events?outcome=VALIDATION_ERROR`, { headers: bearer(admin) });
      return ((await r.json()) as { data: { request_id: string }[] }).data.some((e) => e.request_id === "audited-failure");
    }, "the failed create in the audit log");
  });

  test("only audit:read reads it; a tenant's Admin reads its tenant's events only", async () => {
    const operator = await issueToken(loadSigningKey(dirs[0]!), { roles: ["Operator"], subject: "operator" });
    const tenantAdmin = await issueToken(loadSigningKey(dirs[0]!), { roles: ["Admin"], tenantId: "tenant-123", subject: "t123-admin" });
    secrets.push(operator, tenantAdmin);
    for (const protocol of PROTOCOLS) {
      expectRefused(await call(onA, protocol, "listAuditEvents", {}, { ...bearer(operator), "x-request-id": `audit-op-${protocol}` }), "FORBIDDEN", "this call needs the permission audit:read", `audit-op-${protocol}`, protocol);
    }
    const seen = await call(onA, "rest", "listAuditEvents", {}, bearer(tenantAdmin));
    const tenants = new Set((seen.body!.data as { tenant_id: string }[]).map((e) => e.tenant_id));
    expect([...tenants]).toEqual(["tenant-123"]);
    expect((await call(onA, "connect", "listAuditEvents", { tenantId: "tenant-456" }, bearer(tenantAdmin))).code).toBe("FORBIDDEN");
  });
});

describe("secrets", () => {
  test("no secret the test used is in a server's log, the audit log, or any answer but the one that made it", async () => {
    expect(secrets.length).toBeGreaterThan(20);
    expect(answers.length).toBeGreaterThan(100);
    for (const secret of secrets) {
      for (const line of logs) expect(line.includes(secret), `a log line holds a secret: ${line.slice(0, 80)}`).toBe(false);
      for (const answer of answers) if (answer.made !== secret) expect(answer.raw.includes(secret), "an answer holds a secret").toBe(false);
    }
    const { rows } = await cp.pool.query("SELECT t::text AS text FROM audit_events t UNION ALL SELECT t::text FROM api_keys t UNION ALL SELECT t::text FROM signing_keys t");
    for (const secret of secrets) for (const r of rows) expect(r.text.includes(secret), "the control plane holds a secret in clear").toBe(false);
    // Public keys only in what /.well-known/jwks.json serves.
    const jwks = (await (await fetch(`http://127.0.0.1:${b.ports.http}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) expect(key).not.toHaveProperty("d");
  });
});

describe("retention", () => {
  test("events past the age or beyond the number of rows are deleted, the newest kept", async () => {
    const { AuditEventStore } = await import("../../src/store/audit-events");
    const store = new AuditEventStore(cp.pool, { maxAgeDays: 30, maxRows: 5 });
    await cp.pool.query("INSERT INTO audit_events (rpc, outcome, at) VALUES ('Old.Call', 'OK', now() - interval '31 days')");
    for (let i = 0; i < 7; i++) void store.record({ principal: "p", credentialType: "", credentialId: "", tenantId: "", rpc: `New.Call${i}`, resource: "", outcome: "OK", message: "", requestId: "", clientAddress: "" });
    await store.flush();
    await store.prune();
    const { rows } = await cp.pool.query("SELECT rpc FROM audit_events ORDER BY id");
    expect(rows.map((r) => r.rpc)).toEqual(["New.Call2", "New.Call3", "New.Call4", "New.Call5", "New.Call6"]);
    await store.close();
  });
});
