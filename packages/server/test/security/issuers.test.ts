// JWTs signed elsewhere and the server's own keys over time: an identity
// provider's RS256 and ES256 tokens, its keys served by a real HTTP server
// (a rotated key, unknown at first, is fetched again), its claims mapped to
// tenant, roles and permissions; the server's signing keys in the control
// plane, rotated (old tokens verify until retired), published at
// /.well-known/jwks.json, and never confused with a secret of another
// algorithm.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { startApp, type RunningApp } from "../../src/app";
import { tokenCommand } from "../../src/credential-commands";
import { Notices } from "../../src/store/notices";
import { loadMasterKey, SecretBox } from "../../src/store/secrets";
import { SigningKeyStore } from "../../src/store/signing-keys";
import { startControlPlane, type ControlPlane } from "../../src/testing/control-plane";
import { issueToken } from "../../src/transport/auth";
import { SigningKeyRing } from "../../src/transport/key-ring";

const IDP = "https://idp.example.test";
let cp: ControlPlane;
let dataDir: string;
let app: RunningApp;
let idp: Server;
let fetches = 0;
const published: JWK[] = [];
const idpKeys: Record<string, { alg: "RS256" | "ES256"; privateKey: CryptoKey }> = {};

async function idpKey(kid: string, alg: "RS256" | "ES256", publish = true): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  idpKeys[kid] = { alg, privateKey };
  if (publish) published.push({ ...(await exportJWK(publicKey)), kid, alg, use: "sig" });
}

const now = () => Math.floor(Date.now() / 1000);
// A token of the identity provider, with its claim names (org, realm.roles, scope).
function idpToken(kid: string, claims: JWTPayload = {}): Promise<string> {
  const { alg, privateKey } = idpKeys[kid]!;
  const payload = { iss: IDP, aud: "heliosdb-api", sub: "carol@idp", exp: now() + 600, org: "tenant-123", realm: { roles: ["Viewer"] }, scope: "apikey:read audit:read", ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg, kid }).sign(privateKey);
}

// ListAuditEvents for another tenant: 403 names the caller's tenant, 401 says why the token is refused.
async function whoAmI(token: string): Promise<{ status: number; message: string }> {
  const res = await fetch(`${app.urls.rest}/audit-events?tenant_id=probe`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { error?: { message: string } };
  return { status: res.status, message: body.error?.message ?? "" };
}

beforeAll(async () => {
  await idpKey("idp-rsa-1", "RS256");
  await idpKey("idp-ec-1", "ES256");
  idp = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => idp.listen(0, "127.0.0.1", resolve));
  cp = await startControlPlane();
  dataDir = mkdtempSync(join(tmpdir(), "heliosdb-issuers-"));
  app = await startApp({
    db: cp.pool,
    dataDir,
    host: "127.0.0.1",
    port: 0,
    grpcPort: 0,
    tickMs: 500,
    log: () => undefined,
    issuers: [
      {
        issuer: IDP,
        jwksUrl: `http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks.json`,
        audience: "heliosdb-api",
        tenantClaim: "org",
        rolesClaim: "realm.roles",
        permissionsClaim: "scope",
        cooldownMs: 0,
      },
    ],
    signingKeys: { overlapMs: 3000 },
  });
}, 120_000);

afterAll(async () => {
  await app?.close();
  await cp?.close();
  idp?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe("an external identity provider", () => {
  test("its RS256 and ES256 tokens are accepted, with the tenant, roles and permissions its claims map to", async () => {
    for (const kid of ["idp-rsa-1", "idp-ec-1"]) {
      expect(await whoAmI(await idpToken(kid)), kid).toEqual({ status: 403, message: "this token may only list tenant tenant-123" });
    }
    // Its scope grants apikey:read and audit:read, nothing else.
    const res = await fetch(`${app.urls.rest}/api-keys`, { method: "POST", headers: { authorization: `Bearer ${await idpToken("idp-rsa-1")}`, "content-type": "application/json" }, body: "{}" });
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe("this call needs the permission apikey:manage");
  });

  test("a key it rotates in is fetched again when a token names it", async () => {
    const before = fetches;
    await idpKey("idp-rsa-2", "RS256");
    expect((await whoAmI(await idpToken("idp-rsa-2"))).status).toBe(403);
    expect(fetches).toBeGreaterThan(before);
    // A kid it never published stays unknown.
    await idpKey("idp-unpublished", "ES256", false);
    expect(await whoAmI(await idpToken("idp-unpublished"))).toEqual({ status: 401, message: "the token's signing key is unknown" });
  });

  test("its subjects are its own: the server's token with the same sub and tenant replays none of its idempotent calls", async () => {
    const create = async (token: string) => {
      const res = await fetch(`${app.urls.rest}/api-keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": "same-key" },
        body: JSON.stringify({ name: "k", permissions: ["apikey:read"] }),
      });
      return { status: res.status, replayed: res.headers.get("idempotent-replayed"), id: ((await res.json()) as { api_key: { key_id: string } }).api_key?.key_id };
    };
    const external = await create(await idpToken("idp-rsa-1", { scope: "apikey:manage apikey:read" }));
    const own = await create(await issueToken(await app.credentials.ring.currentKey(), { roles: ["Admin"], subject: "carol@idp", tenantId: "tenant-123" }));
    expect([external.status, own.status]).toEqual([201, 201]);
    expect(own.replayed).toBeNull();
    expect(own.id).not.toBe(external.id);
    // The same caller again: the first answer, replayed.
    const again = await create(await idpToken("idp-rsa-1", { scope: "apikey:manage apikey:read" }));
    expect([again.replayed, again.id]).toEqual(["true", external.id]);
  });

  test("its token without a tenant, for another audience, expired, or HS256 is refused", async () => {
    expect(await whoAmI(await idpToken("idp-ec-1", { org: undefined }))).toEqual({ status: 401, message: "the token has no tenant claim (org)" });
    expect(await whoAmI(await idpToken("idp-ec-1", { org: 7 }))).toEqual({ status: 401, message: "the token's tenant claim (org) must be a non-empty string" });
    expect(await whoAmI(await idpToken("idp-ec-1", { aud: "other" }))).toEqual({ status: 401, message: "the token's audience is not accepted" });
    expect(await whoAmI(await idpToken("idp-ec-1", { exp: now() - 60 }))).toEqual({ status: 401, message: "the token has expired" });
    const hs = await new SignJWT({ iss: IDP, aud: "heliosdb-api", exp: now() + 60, org: "tenant-123" }).setProtectedHeader({ alg: "HS256", kid: "idp-rsa-1" }).sign(new TextEncoder().encode("x".repeat(32)));
    expect(await whoAmI(hs)).toEqual({ status: 401, message: "the token's algorithm is not accepted for this issuer; use RS256 or ES256" });
  });
});

describe("the server's own signing keys", () => {
  const ring = () => app.credentials.ring;
  const admin = async () => issueToken(await ring().currentKey(), { roles: ["Admin"], subject: "own" });

  test("/.well-known/jwks.json publishes the public keys, without a token", async () => {
    const res = await fetch(`http://127.0.0.1:${app.ports.http}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: JWK[] };
    const current = await ring().currentKey();
    expect(keys.map((k) => k.kid)).toContain(current.kid);
    expect(keys.find((k) => k.kid === current.kid)).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    for (const key of keys) expect(key.d).toBeUndefined();
    const post = await fetch(`http://127.0.0.1:${app.ports.http}/.well-known/jwks.json`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(((await post.json()) as { error: { code: string } }).error.code).toBe("METHOD_NOT_ALLOWED");
  });

  test("a public key is not an HMAC secret: an HS256 token keyed with it is refused", async () => {
    const current = await ring().currentKey();
    const jwk = (await (await fetch(`http://127.0.0.1:${app.ports.http}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    const secret = new TextEncoder().encode(JSON.stringify(jwk.keys.find((k) => k.kid === current.kid)));
    const forged = await new SignJWT({ iss: "heliosdb.com", aud: "heliosdb-api", exp: now() + 60, roles: ["Admin"] }).setProtectedHeader({ alg: "HS256", kid: current.kid }).sign(secret);
    expect(await whoAmI(forged)).toEqual({ status: 401, message: "the token's signing key is unknown or retired" });
  });

  test("rotation: a new key signs, the old one verifies for the overlap; a retired key's tokens are refused, by every server", async () => {
    const oldToken = await admin();
    const oldKid = (await ring().currentKey()).kid;
    expect((await whoAmI(oldToken)).status).toBe(200);
    const newKid = await ring().rotate();
    expect(newKid).not.toBe(oldKid);
    const jwks = (await (await fetch(`http://127.0.0.1:${app.ports.http}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    const newToken = await admin();
    expect((await whoAmI(newToken)).status).toBe(200);
    expect((await whoAmI(oldToken)).status).toBe(200);
    // The overlap (3 s here) ends: the old key's token is refused, remembered or not.
    await waitFor(async () => (await whoAmI(oldToken)).status === 401, "the old key's retirement");
    expect(await whoAmI(oldToken)).toEqual({ status: 401, message: "the token's signing key is unknown or retired" });
    // Another process (here: the CLI's ring) retires the current key: this server hears it.
    const elsewhere = new SigningKeyRing(new SigningKeyStore(cp.pool, new SecretBox(loadMasterKey(dataDir))), new Notices(cp.pool, "heliosdb_credentials", "test"));
    expect(await elsewhere.retire(newKid)).toBe(true);
    await waitFor(async () => (await whoAmI(newToken)).status === 401, "the retired key's token refused");
  });

  test("`token --database-url` signs with the control plane's current key", async () => {
    await ring().rotate();
    const printed: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((line: string) => void printed.push(line));
    try {
      await tokenCommand(["--roles", "Admin", "--tenant", "tenant-9", "--database-url", cp.url(), "--data-dir", dataDir]);
    } finally {
      log.mockRestore();
    }
    const header = JSON.parse(Buffer.from(printed[0]!.split(".")[0]!, "base64url").toString("utf8"));
    expect(header).toMatchObject({ alg: "ES256", kid: (await ring().currentKey()).kid });
    expect(await whoAmI(printed[0]!)).toEqual({ status: 403, message: "this token may only list tenant tenant-9" });
  });
});
