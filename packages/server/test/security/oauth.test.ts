// OAuth 2.0 (spec §5.3) as clients and people meet it: client_credentials
// with HTTP Basic and client_secret_post; the authorization-code flow with
// PKCE driven through the server's own login and consent pages in headless
// Chromium (playwright-core and Debian's chromium: no browser is
// downloaded); the tokens it yields on REST and gRPC; and every way a code
// or a refresh token can be misused. One server, one browser for the file.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startHarness, type Harness } from "./harness";
import { Clients } from "./protocols";

const CHROMIUM = "/usr/bin/chromium";
const PASSWORD = "correct horse battery staple";
let h: Harness;
let browser: Browser;
let clients: Clients;
let callback: http.Server;
let origin: string;
let redirectUri: string;
let admin: string;
/** A public client (authorization_code + refresh_token) and a confidential one (client_credentials). */
let publicClient: string;
let service: { id: string; secret: string };
const secrets: string[] = [PASSWORD];

const pkce = () => {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
};

async function rest(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${h.app.urls.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
}

async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${origin}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(form) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: res.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : undefined };
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}` });

function authorizeUrl(challenge: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({ response_type: "code", client_id: publicClient, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: "S256", state: "st-1", ...extra });
  return `${origin}/oauth/authorize?${query}`;
}

/** Signs in as `username` on the login page and allows on the consent page; resolves the URL the browser lands on. */
async function signIn(challenge: string, extra: Record<string, string> = {}, username = "alice"): Promise<{ url: URL; scopes: string }> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(authorizeUrl(challenge, extra));
    await page.fill("#username", username);
    await page.fill("#password", PASSWORD);
    await page.click("#sign-in");
    const scopes = (await page.textContent("#scopes")) ?? "";
    await Promise.all([page.waitForURL((u) => u.pathname === "/callback"), page.click("#allow")]);
    return { url: new URL(page.url()), scopes };
  } finally {
    await context.close();
  }
}

/** A code through the browser, exchanged: the token response. */
async function codeFlow(extra: Record<string, string> = {}) {
  const { verifier, challenge } = pkce();
  const { url } = await signIn(challenge, extra);
  const code = url.searchParams.get("code")!;
  return { code, verifier, answer: await post("/oauth/token", { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier, client_id: publicClient }) };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`headless Chromium is missing at ${CHROMIUM}: install Debian's package (apt-get install -y chromium; scripts/test.sh does)`);
  h = await startHarness();
  clients = new Clients(h.app);
  origin = `http://127.0.0.1:${h.app.ports.http}`;
  callback = http.createServer((_, res) => res.writeHead(200, { "content-type": "text/plain" }).end("signed in"));
  await new Promise<void>((resolve) => callback.listen(0, "127.0.0.1", resolve));
  redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  admin = await h.token();
  const user = await rest("POST", "/users", admin, { username: "alice", password: PASSWORD, tenant_id: "tenant-a", roles: ["Admin"] });
  expect(user.status, user.text).toBe(201);
  const pub = await rest("POST", "/oauth-clients", admin, { name: "Dashboard <test>", redirect_uris: [redirectUri, `${redirectUri}-other`] });
  expect(pub.status, pub.text).toBe(201);
  expect(pub.body.client_secret).toBe("");
  publicClient = pub.body.client.client_id;
  const conf = await rest("POST", "/oauth-clients", admin, { name: "billing", confidential: true, tenant_id: "tenant-a", roles: ["Viewer"] });
  expect(conf.status, conf.text).toBe(201);
  service = { id: conf.body.client.client_id, secret: conf.body.client_secret };
  secrets.push(service.secret);
}, 120_000);

afterAll(async () => {
  clients?.close();
  await browser?.close();
  await new Promise((resolve) => (callback ? callback.close(resolve) : resolve(undefined)));
  await h?.close();
});

describe("discovery and client_credentials", () => {
  test("the metadata names the endpoints, S256 only", async () => {
    const res = await fetch(`${origin}/.well-known/oauth-authorization-server`);
    const body = await res.json();
    expect(body).toMatchObject({ token_endpoint: `${origin}/oauth/token`, authorization_endpoint: `${origin}/oauth/authorize`, revocation_endpoint: `${origin}/oauth/revoke` });
    expect(body.code_challenge_methods_supported).toEqual(["S256"]);
  });

  test("HTTP Basic and client_secret_post yield a token that works, with the client's tenant and roles", async () => {
    for (const answer of [
      await post("/oauth/token", { grant_type: "client_credentials" }, basic(service.id, service.secret)),
      await post("/oauth/token", { grant_type: "client_credentials", client_id: service.id, client_secret: service.secret }),
    ]) {
      expect(answer.status, answer.text).toBe(200);
      expect(answer.headers.get("cache-control")).toBe("no-store");
      expect(answer.body).toMatchObject({ token_type: "Bearer", expires_in: 900 });
      expect(answer.body.refresh_token).toBeUndefined();
      // Viewer of tenant-a: reads replications, manages no keys.
      expect((await rest("GET", "/replications", answer.body.access_token)).status).toBe(200);
      const keys = await rest("POST", "/api-keys", answer.body.access_token, { name: "x", roles: ["Viewer"] });
      expect(keys.body.error.code).toBe("FORBIDDEN");
    }
  });

  test("a wrong secret or an unknown client is 401 invalid_client with WWW-Authenticate, and audited", async () => {
    for (const answer of [
      await post("/oauth/token", { grant_type: "client_credentials" }, basic(service.id, "wrong")),
      await post("/oauth/token", { grant_type: "client_credentials", client_id: service.id, client_secret: `${service.secret}x` }),
      await post("/oauth/token", { grant_type: "client_credentials" }, basic("00000000-0000-4000-8000-000000000000", service.secret)),
    ]) {
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({ error: "invalid_client", error_description: "client authentication failed" });
      expect(answer.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
    }
    await h.app.credentials.audit.flush();
    const refused = (await rest("GET", `/audit-events?principal=client:${service.id}&outcome=UNAUTHORIZED`, admin)).body.data;
    expect(refused.filter((e: { rpc: string }) => e.rpc === "OAuth.Token").length).toBe(2);
    const issued = (await rest("GET", `/audit-events?principal=client:${service.id}&outcome=OK`, admin)).body.data;
    expect(issued.filter((e: { message: string }) => e.message === "token issued (client_credentials)").length).toBeGreaterThanOrEqual(2);
  });

  test("bad requests get RFC 6749 errors", async () => {
    const json = await fetch(`${origin}/oauth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect([json.status, (await json.json()).error]).toEqual([400, "invalid_request"]);
    const grant = await post("/oauth/token", { grant_type: "password", username: "alice", password: PASSWORD }, basic(service.id, service.secret));
    expect([grant.status, grant.body.error]).toEqual([400, "unsupported_grant_type"]);
    const scope = await post("/oauth/token", { grant_type: "client_credentials", scope: "apikey:manage" }, basic(service.id, service.secret));
    expect([scope.status, scope.body.error]).toEqual([400, "invalid_scope"]);
    const twice = await fetch(`${origin}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials&grant_type=client_credentials" });
    expect((await twice.json()).error).toBe("invalid_request");
    const get = await fetch(`${origin}/oauth/token`);
    expect(get.status).toBe(405);
    expect((await get.json()).error.code).toBe("METHOD_NOT_ALLOWED");
  });
});

describe("authorization code with PKCE, through the login page", () => {
  test("a wrong password and an unknown user get the same refusal, naming neither", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const seen: string[] = [];
      for (const username of ["alice", "nobody"]) {
        await page.goto(authorizeUrl(pkce().challenge));
        await page.fill("#username", username);
        await page.fill("#password", "not the password");
        const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.click("#sign-in")]);
        expect(response.status()).toBe(401);
        seen.push((await page.textContent("[role=alert]")) ?? "");
      }
      expect(seen).toEqual(["The username or password is incorrect.", "The username or password is incorrect."]);
    } finally {
      await context.close();
    }
  });

  test("sign in, consent, exchange: the token works on REST and gRPC; the refresh token rotates", async () => {
    const { verifier, challenge } = pkce();
    const { url, scopes } = await signIn(challenge);
    expect(url.searchParams.get("state")).toBe("st-1");
    expect(scopes).toContain("every permission");
    const answer = await post("/oauth/token", { grant_type: "authorization_code", code: url.searchParams.get("code")!, redirect_uri: redirectUri, code_verifier: verifier, client_id: publicClient });
    expect(answer.status, answer.text).toBe(200);
    const { access_token: access, refresh_token: refresh } = answer.body;
    expect(refresh).toMatch(/^hdbrt_/);
    for (const protocol of ["rest", "grpc"] as const) {
      const listed = await clients.call(protocol, "listApiKeys", {}, { authorization: `Bearer ${access}` });
      expect(listed.code, `${protocol}: ${listed.message}`).toBe("OK");
    }
    // The token carries the user's tenant: another tenant's keys are not its to list.
    expect((await rest("GET", "/api-keys?tenant_id=tenant-b", access)).body.error.code).toBe("FORBIDDEN");
    const rotated = await post("/oauth/token", { grant_type: "refresh_token", refresh_token: refresh, client_id: publicClient });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.refresh_token).not.toBe(refresh);
    expect((await rest("GET", "/api-keys", rotated.body.access_token)).status).toBe(200);
  });

  test("a narrower scope is shown on the consent page and bounds the token", async () => {
    const { answer } = await codeFlow({ scope: "replication:read" });
    expect(answer.body.scope).toBe("replication:read");
    expect((await rest("GET", "/replications", answer.body.access_token)).status).toBe(200);
    expect((await rest("GET", "/api-keys", answer.body.access_token)).body.error.code).toBe("FORBIDDEN");
  });

  test("Deny on the consent page goes back to the client with access_denied and no code", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(authorizeUrl(pkce().challenge));
      await page.fill("#username", "alice");
      await page.fill("#password", PASSWORD);
      await page.click("#sign-in");
      await Promise.all([page.waitForURL((u) => u.pathname === "/callback"), page.click("#deny")]);
      const url = new URL(page.url());
      expect([url.searchParams.get("error"), url.searchParams.get("state"), url.searchParams.has("code")]).toEqual(["access_denied", "st-1", false]);
    } finally {
      await context.close();
    }
  });

  test("a wrong verifier is invalid_grant, and the code is spent", async () => {
    const { verifier, challenge } = pkce();
    const { url } = await signIn(challenge);
    const code = url.searchParams.get("code")!;
    const wrong = await post("/oauth/token", { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: pkce().verifier, client_id: publicClient });
    expect([wrong.status, wrong.body.error, wrong.body.error_description]).toEqual([400, "invalid_grant", "code_verifier does not match the code_challenge"]);
    const again = await post("/oauth/token", { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier, client_id: publicClient });
    expect(again.body.error).toBe("invalid_grant");
  });

  test("a reused code is refused and revokes the tokens issued from it", async () => {
    const { code, verifier, answer } = await codeFlow();
    expect(answer.status).toBe(200);
    expect((await rest("GET", "/api-keys", answer.body.access_token)).status).toBe(200);
    const reused = await post("/oauth/token", { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier, client_id: publicClient });
    expect([reused.status, reused.body.error]).toEqual([400, "invalid_grant"]);
    const refused = await rest("GET", "/api-keys", answer.body.access_token);
    expect([refused.status, refused.body.error.code, refused.body.error.message]).toEqual([401, "UNAUTHORIZED", "the token has been revoked"]);
    const refresh = await post("/oauth/token", { grant_type: "refresh_token", refresh_token: answer.body.refresh_token, client_id: publicClient });
    expect(refresh.body.error).toBe("invalid_grant");
  });

  test("an expired code, and another registered redirect URI, are invalid_grant", async () => {
    const expired = pkce();
    const first = await signIn(expired.challenge);
    await h.pool.query(`UPDATE oauth_codes SET expires_at = now() - interval '1 second' WHERE used_at IS NULL`);
    const late = await post("/oauth/token", { grant_type: "authorization_code", code: first.url.searchParams.get("code")!, redirect_uri: redirectUri, code_verifier: expired.verifier, client_id: publicClient });
    expect([late.status, late.body.error, late.body.error_description]).toEqual([400, "invalid_grant", "the authorization code has expired"]);
    const other = pkce();
    const second = await signIn(other.challenge);
    const mismatch = await post("/oauth/token", { grant_type: "authorization_code", code: second.url.searchParams.get("code")!, redirect_uri: `${redirectUri}-other`, code_verifier: other.verifier, client_id: publicClient });
    expect([mismatch.status, mismatch.body.error_description]).toEqual([400, "redirect_uri does not match the authorization request"]);
  });

  test("an unregistered redirect URI or plain PKCE never reaches the login page", async () => {
    const unregistered = await fetch(authorizeUrl(pkce().challenge, { redirect_uri: "http://127.0.0.1:9/evil" }), { redirect: "manual" });
    expect(unregistered.status).toBe(400);
    expect(await unregistered.text()).toContain("The redirect URI is not registered");
    const plain = await fetch(authorizeUrl(pkce().verifier, { code_challenge_method: "plain" }), { redirect: "manual" });
    expect(plain.status).toBe(303);
    const location = new URL(plain.headers.get("location")!);
    expect([location.origin + location.pathname, location.searchParams.get("error"), location.searchParams.get("state")]).toEqual([redirectUri, "invalid_request", "st-1"]);
  });

  test("a login form posted without the page's CSRF cookie is refused; with it, it signs in", async () => {
    const page = await fetch(authorizeUrl(pkce().challenge));
    const cookie = page.headers.get("set-cookie")!.split(";")[0]!;
    const html = await page.text();
    const fields = Object.fromEntries([...html.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)))]));
    const forged = await post("/oauth/authorize", { ...fields, username: "alice", password: PASSWORD });
    expect(forged.status).toBe(403);
    const genuine = await post("/oauth/authorize", { ...fields, username: "alice", password: PASSWORD }, { cookie });
    expect(genuine.status).toBe(200);
    expect(genuine.text).toContain("Allow access?");
  });
});

describe("refresh tokens and revocation", () => {
  test("a refresh token used twice revokes its whole family", async () => {
    const { answer } = await codeFlow();
    const first = answer.body.refresh_token;
    const second = await post("/oauth/token", { grant_type: "refresh_token", refresh_token: first, client_id: publicClient });
    expect(second.status).toBe(200);
    const reuse = await post("/oauth/token", { grant_type: "refresh_token", refresh_token: first, client_id: publicClient });
    expect([reuse.status, reuse.body.error]).toEqual([400, "invalid_grant"]);
    // The newest refresh token and every access token of the family are refused now.
    const newest = await post("/oauth/token", { grant_type: "refresh_token", refresh_token: second.body.refresh_token, client_id: publicClient });
    expect(newest.body.error).toBe("invalid_grant");
    for (const token of [answer.body.access_token, second.body.access_token]) expect((await rest("GET", "/api-keys", token)).status).toBe(401);
  });

  test("POST /oauth/revoke revokes a refresh token with its access tokens; an unknown token is 200", async () => {
    const { answer } = await codeFlow();
    const revoked = await post("/oauth/revoke", { token: answer.body.refresh_token, token_type_hint: "refresh_token", client_id: publicClient });
    expect(revoked.status).toBe(200);
    expect((await post("/oauth/token", { grant_type: "refresh_token", refresh_token: answer.body.refresh_token, client_id: publicClient })).body.error).toBe("invalid_grant");
    expect((await rest("GET", "/api-keys", answer.body.access_token)).status).toBe(401);
    expect((await post("/oauth/revoke", { token: "hdbrt_unknown", client_id: publicClient })).status).toBe(200);
    // An access token revoked by the client that holds it.
    const own = await post("/oauth/token", { grant_type: "client_credentials" }, basic(service.id, service.secret));
    expect((await post("/oauth/revoke", { token: own.body.access_token }, basic(service.id, service.secret))).status).toBe(200);
    expect((await rest("GET", "/replications", own.body.access_token)).status).toBe(401);
  });
});

describe("retention", () => {
  test("grants expired a day ago go (with their refresh tokens) when a grant is made, at most every ten minutes", async () => {
    const { OAuthGrantStore } = await import("../../src/store/oauth-grants");
    const expired = async () => {
      const { rows } = await h.pool.query("INSERT INTO oauth_grants (id, client_id, expires_at) VALUES (gen_random_uuid(), $1, now() - interval '25 hours') RETURNING id", [service.id]);
      await h.pool.query("INSERT INTO oauth_refresh_tokens (token_hash, grant_id) VALUES (sha256(gen_random_uuid()::text::bytea), $1)", [rows[0].id]);
      return rows[0].id as string;
    };
    const recent = (await h.pool.query("INSERT INTO oauth_grants (id, client_id, expires_at) VALUES (gen_random_uuid(), $1, now() - interval '1 hour') RETURNING id", [service.id])).rows[0].id;
    const old = await expired();
    const store = new OAuthGrantStore(h.pool);
    const made = await store.createGrant(service.id, undefined, "", 3600);
    const left = async (ids: string[]) => (await h.pool.query("SELECT id FROM oauth_grants WHERE id = ANY($1::uuid[])", [ids])).rows.map((r) => r.id).sort();
    expect(await left([old, recent, made.id])).toEqual([recent, made.id].sort());
    expect((await h.pool.query("SELECT 1 FROM oauth_refresh_tokens WHERE grant_id = $1", [old])).rowCount).toBe(0);
    // The next grant within ten minutes deletes nothing.
    const later = await expired();
    await store.createGrant(service.id, undefined, "", 3600);
    expect(await left([later])).toEqual([later]);
    await store.prune();
  });
});

describe("users and clients through the API", () => {
  test("a tenant's admin manages only its tenant's; password changes and deleted clients end tokens; nothing returns or logs a secret", async () => {
    const bound = await h.token({ tenantId: "tenant-b", subject: "b-admin" });
    const other = await rest("POST", "/users", bound, { username: "mallory", password: PASSWORD, tenant_id: "tenant-a", roles: ["Viewer"] });
    expect(other.body.error.code).toBe("FORBIDDEN");
    const list = await rest("GET", "/users", admin);
    const alice = list.body.data.find((u: { username: string }) => u.username === "alice");
    expect((await rest("GET", `/users/${alice.user_id}`, bound)).body.error.code).toBe("NOT_FOUND");
    expect((await rest("GET", `/oauth-clients/${service.id}`, bound)).body.error.code).toBe("NOT_FOUND");
    const short = await rest("POST", "/users", admin, { username: "bob", password: "short", roles: ["Viewer"] });
    expect(short.body.error.code).toBe("VALIDATION_ERROR");
    // A new password ends the user's grants; a deleted client's tokens are refused.
    const { answer } = await codeFlow();
    expect((await rest("POST", `/users/${alice.user_id}/password`, admin, { password: `${PASSWORD}!` })).status).toBe(200);
    secrets.push(`${PASSWORD}!`);
    expect((await rest("GET", "/api-keys", answer.body.access_token)).status).toBe(401);
    expect((await rest("POST", `/users/${alice.user_id}/password`, admin, { password: PASSWORD })).status).toBe(200);
    const own = await post("/oauth/token", { grant_type: "client_credentials" }, basic(service.id, service.secret));
    expect((await rest("DELETE", `/oauth-clients/${service.id}`, admin)).status).toBe(200);
    expect((await rest("GET", "/replications", own.body.access_token)).status).toBe(401);
    expect((await post("/oauth/token", { grant_type: "client_credentials" }, basic(service.id, service.secret))).status).toBe(401);
    for (const text of [list.text, (await rest("GET", "/oauth-clients", admin)).text, h.log.join("\n")]) for (const s of secrets) expect(text).not.toContain(s);
  });
});
