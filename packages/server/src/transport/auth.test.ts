// Remembered tokens are still checked: a token verified once is refused the
// moment it expires, and no change to its text (claims or signature) is
// taken for the remembered one.
import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { describe, expect, test } from "vitest";
import { AUDIENCE, ISSUER, issueToken, VerifiedTokens } from "./auth";

const key = randomBytes(32);

// Swaps the claims of a signed token, keeping its header and signature.
function withClaims(token: string, claims: Record<string, unknown>): string {
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const original = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  return [header, Buffer.from(JSON.stringify({ ...original, ...claims })).toString("base64url"), signature].join(".");
}

describe("verified tokens, remembered until they expire", () => {
  test("a valid token gives its principal, the same on every call", async () => {
    const tokens = new VerifiedTokens(key);
    const token = await issueToken(key, { roles: ["Viewer"], subject: "alice", tenantId: "tenant-1" });
    const first = await tokens.principal(token);
    expect(first).toMatchObject({ subject: "alice", roles: ["Viewer"], tenantId: "tenant-1" });
    expect(first.permissions.has("replication:read")).toBe(true);
    expect(await tokens.principal(token)).toEqual(first);
  });

  test("a token verified while valid is refused once its exp has passed", async () => {
    const tokens = new VerifiedTokens(key);
    const exp = Math.floor(Date.now() / 1000) + 1;
    const token = await new SignJWT({ roles: ["Admin"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject("short-lived")
      .setExpirationTime(exp)
      .sign(key);
    await expect(tokens.principal(token)).resolves.toMatchObject({ subject: "short-lived" });
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
    await expect(tokens.principal(token)).rejects.toThrow(/exp/);
  });

  test("changed claims under the original signature are refused, though the original is remembered", async () => {
    const tokens = new VerifiedTokens(key);
    const token = await issueToken(key, { roles: ["Viewer"], tenantId: "tenant-1" });
    await tokens.principal(token);
    await expect(tokens.principal(withClaims(token, { roles: ["Admin"] }))).rejects.toThrow(/signature/);
    await expect(tokens.principal(withClaims(token, { tenant_id: "tenant-2" }))).rejects.toThrow(/signature/);
    await expect(tokens.principal(withClaims(token, { exp: Math.floor(Date.now() / 1000) + 86_400 }))).rejects.toThrow(/signature/);
  });

  test("a token signed with another key, for another audience or not yet valid is refused", async () => {
    const tokens = new VerifiedTokens(key);
    await expect(tokens.principal(await issueToken(randomBytes(32), { roles: ["Admin"] }))).rejects.toThrow(/signature/);
    const other = await new SignJWT({ roles: ["Admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuer(ISSUER).setAudience("elsewhere").setExpirationTime("1h").sign(key);
    await expect(tokens.principal(other)).rejects.toThrow(/aud/);
    const early = await new SignJWT({ roles: ["Admin"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setNotBefore(Math.floor(Date.now() / 1000) + 3600)
      .setExpirationTime("2h")
      .sign(key);
    await expect(tokens.principal(early)).rejects.toThrow(/nbf/);
  });

  test("a token without exp is verified on every call, never remembered", async () => {
    const tokens = new VerifiedTokens(key);
    const token = await new SignJWT({ roles: ["Admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(key);
    await expect(tokens.principal(token)).resolves.toMatchObject({ roles: ["Admin"] });
    expect((tokens as unknown as { verified: Map<string, unknown> }).verified.size).toBe(0);
  });
});
