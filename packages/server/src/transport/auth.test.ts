// The JWT rules without a control plane (one HS256 key): what is refused and
// why, and that remembered tokens are still checked — a token verified once
// is refused once it expires, and no change to its text is taken for the
// remembered one. The same rules over every protocol, with the control
// plane's keys and API keys: test/security/.
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { SignJWT, type JWTPayload } from "jose";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { ApiKeyStore } from "../store/api-keys";
import { Notices } from "../store/notices";
import { ApiKeyVerifier } from "./api-key-auth";
import { Authenticator, issueToken, ROLE_PERMISSIONS } from "./auth";
import { AUDIENCE, CredentialRefused, ISSUER, JwtVerifier } from "./jwt";
import { localKid, StaticKeys } from "./key-ring";

const key = randomBytes(32);
const now = () => Math.floor(Date.now() / 1000);
const verifier = () => new JwtVerifier(new StaticKeys(key), ROLE_PERMISSIONS);

// A token signed with `key` (or `with`), with exactly these claims and header fields.
function sign(claims: JWTPayload, header: Record<string, unknown> = {}, withKey: Uint8Array = key): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: localKid(withKey), ...header }).sign(withKey);
}
const valid = (extra: JWTPayload = {}) => ({ iss: ISSUER, aud: AUDIENCE, sub: "alice", exp: now() + 3600, roles: ["Viewer"], ...extra });

// Swaps the claims of a signed token, keeping its header and signature.
function withClaims(token: string, claims: Record<string, unknown>): string {
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const original = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  return [header, Buffer.from(JSON.stringify({ ...original, ...claims })).toString("base64url"), signature].join(".");
}

async function refusal(tokens: JwtVerifier, token: string): Promise<string> {
  const e = await tokens.principal(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e, "the token was accepted").toBeInstanceOf(CredentialRefused);
  return (e as Error).message;
}

describe("verified tokens, remembered until they expire", () => {
  test("a valid token gives its principal, the same on every call", async () => {
    const tokens = verifier();
    const token = await issueToken(key, { roles: ["Viewer"], subject: "alice", tenantId: "tenant-1" });
    const first = await tokens.principal(token);
    expect(first).toMatchObject({ subject: "alice", roles: ["Viewer"], tenantId: "tenant-1", credential: { type: "jwt" } });
    expect(first.permissions.has("replication:read")).toBe(true);
    expect(first.permissions.has("replication:create")).toBe(false);
    expect(await tokens.principal(token)).toBe(first);
  });

  test("a token remembered while valid is refused once its exp (and the 30 s of skew) has passed", async () => {
    const tokens = verifier();
    const exp = now() - 29;
    const token = await sign(valid({ exp }));
    await expect(tokens.principal(token)).resolves.toMatchObject({ subject: "alice" });
    await new Promise((r) => setTimeout(r, (exp + 30) * 1000 - Date.now() + 50));
    expect(await refusal(tokens, token)).toBe("the token has expired");
  });

  test("changed claims under the original signature are refused, though the original is remembered", async () => {
    const tokens = verifier();
    const token = await issueToken(key, { roles: ["Viewer"], tenantId: "tenant-1" });
    await tokens.principal(token);
    for (const claims of [{ roles: ["Admin"] }, { tenant_id: "tenant-2" }, { exp: now() + 86_400 }]) {
      expect(await refusal(tokens, withClaims(token, claims))).toBe("the token's signature is not valid");
    }
  });
});

describe("what a token must be", () => {
  test("HS256, RS256 or ES256 only: alg none and others are refused", async () => {
    const tokens = verifier();
    const payload = Buffer.from(JSON.stringify(valid())).toString("base64url");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
    expect(await refusal(tokens, none)).toMatch(/algorithm "none" is not accepted/);
    expect(await refusal(tokens, await new SignJWT(valid()).setProtectedHeader({ alg: "HS384" }).sign(key))).toMatch(/algorithm "HS384" is not accepted/);
  });

  test("iss, aud and exp are required; a wrong key, issuer or audience is refused; nbf has 30 s of skew", async () => {
    const tokens = verifier();
    const cases: [JWTPayload, string][] = [
      [{ exp: undefined }, "the token has no exp claim"],
      [{ aud: undefined }, "the token has no aud claim"],
      [{ aud: "elsewhere" }, "the token's audience is not accepted"],
      [{ iss: "https://elsewhere.example" }, "the token's issuer is not trusted"],
      [{ iss: undefined }, "the token's issuer is not trusted"],
      [{ exp: now() - 31 }, "the token has expired"],
      [{ nbf: now() + 3600 }, "the token is not valid yet (nbf)"],
    ];
    for (const [claims, message] of cases) expect(await refusal(tokens, await sign(valid(claims))), JSON.stringify(claims)).toBe(message);
    expect(await refusal(tokens, await sign(valid(), {}, randomBytes(32)))).toBe("the token's signing key is unknown or retired");
    expect(await refusal(tokens, await sign(valid(), { kid: localKid(key) }, randomBytes(32)))).toBe("the token's signature is not valid");
    await expect(tokens.principal(await sign(valid({ nbf: now() + 20, exp: now() + 60 })))).resolves.toMatchObject({ subject: "alice" });
  });

  test("a tenant claim is a tenant: empty, a number or null is refused, never read as an operator's token", async () => {
    const tokens = verifier();
    for (const tenant_id of ["", 42, null, ["tenant-1"], "a\u0000b"]) {
      expect(await refusal(tokens, await sign(valid({ tenant_id }))), JSON.stringify(tenant_id)).toBe("the token's tenant claim (tenant_id) must be a non-empty string");
    }
    const operator = await tokens.principal(await sign(valid()));
    expect(operator.tenantId).toBeUndefined();
  });

  test("roles and permissions are lists of strings; sub is a string", async () => {
    const tokens = verifier();
    expect(await refusal(tokens, await sign(valid({ roles: { Admin: true } })))).toBe("the token's roles claim must be a list of strings");
    expect(await refusal(tokens, await sign(valid({ permissions: [1] })))).toBe("the token's permissions claim must be a list of strings");
    expect(await refusal(tokens, await sign(valid({ sub: 7 as never })))).toBe("the token's sub claim must be a string");
  });

  test("a token without kid (printed before keys had ids) verifies with the HS256 key", async () => {
    const tokens = verifier();
    const legacy = await new SignJWT(valid()).setProtectedHeader({ alg: "HS256" }).sign(key);
    await expect(tokens.principal(legacy)).resolves.toMatchObject({ subject: "alice" });
    expect(await refusal(tokens, await new SignJWT(valid()).setProtectedHeader({ alg: "HS256" }).sign(randomBytes(32)))).toBe("the token's signature is not valid");
  });

  test("garbage is malformed, and no refusal names the token library's internals", async () => {
    const tokens = verifier();
    for (const garbage of ["x", "a.b.c", "..", `${Buffer.from("{").toString("base64url")}.e30.`]) expect(await refusal(tokens, garbage)).toBe("the token is malformed");
  });
});

describe("the Authenticator: which header, and the §6 error", () => {
  const auth = new Authenticator({ jwt: verifier() });
  const refused = async (headers: Record<string, string>) => {
    const e = await auth.authenticate(new Headers(headers)).catch((e: unknown) => e);
    return e as { code: number; rawMessage: string };
  };

  test("no credential, a scheme other than Bearer, both headers, or an API key where none are kept: UNAUTHORIZED", async () => {
    const token = await issueToken(key, { roles: ["Admin"] });
    expect((await refused({})).rawMessage).toMatch(/^missing credentials/);
    expect((await refused({ authorization: `Basic ${token}` })).rawMessage).toBe("the Authorization header must be Bearer <token>");
    expect((await refused({ authorization: `Bearer ${token}`, "x-api-key": "hdb_x" })).rawMessage).toMatch(/send one credential/);
    expect((await refused({ "x-api-key": "hdb_x" })).rawMessage).toBe("API keys are not accepted here");
    for (const headers of [{}, { authorization: "Bearer x" }] as Record<string, string>[]) expect((await refused(headers)).code).toBe(16 /* Unauthenticated */);
    await expect(auth.authenticate(new Headers({ authorization: `bearer ${token}` }))).resolves.toMatchObject({ roles: ["Admin"] });
  });

  test("a key that cannot be looked up (no control plane) is SERVICE_UNAVAILABLE, not a refusal: the client keeps it", async () => {
    const nowhere = new pg.Pool({ host: "127.0.0.1", port: 1, connectionTimeoutMillis: 2000 });
    const logged: string[] = [];
    const keys = new ApiKeyVerifier(new ApiKeyStore(nowhere, randomBytes(32)), new Notices(nowhere, "unused", "test"), ROLE_PERMISSIONS);
    const withKeys = new Authenticator({ jwt: verifier(), apiKeys: keys, log: (m) => void logged.push(m) });
    const e = (await withKeys.authenticate(new Headers({ "x-api-key": `hdb_${randomBytes(32).toString("base64url")}` })).catch((e: unknown) => e)) as { code: number; rawMessage: string };
    expect(e.code).toBe(Code.Unavailable);
    expect(e.rawMessage).toBe("the credentials cannot be checked now; retry shortly");
    expect(logged).toEqual([expect.stringMatching(/^credentials not checked: /)]);
    await nowhere.end();
  });

  test("a request's headers are authenticated once (the guard's answer stands for the interceptor); other headers, or changed ones, afresh", async () => {
    let checks = 0;
    const counted = new Authenticator({ jwt: verifier(), revoked: async () => (checks++, false) });
    const headers = new Headers({ authorization: `Bearer ${await issueToken(key, { roles: ["Admin"] })}` });
    const first = await counted.authenticate(headers);
    expect(await counted.authenticate(headers)).toBe(first);
    expect(checks).toBe(1);
    await counted.authenticate(new Headers(headers));
    expect(checks).toBe(2);
    headers.set("authorization", `Bearer ${await issueToken(key, { roles: ["Viewer"] })}`);
    expect((await counted.authenticate(headers)).roles).toEqual(["Viewer"]);
    expect(checks).toBe(3);
    headers.set("x-api-key", "hdb_x");
    await expect(counted.authenticate(headers)).rejects.toMatchObject({ rawMessage: expect.stringMatching(/send one credential/) });
  });
});
