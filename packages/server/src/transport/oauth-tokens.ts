// The grants of the OAuth 2.0 token endpoint (spec §5.3, RFC 6749 §4.1,
// §4.4, §6; PKCE RFC 7636, S256 only). Access tokens are the server's own
// JWTs, signed with the control plane's current key, so every credential
// check accepts them; their jti names their grant (`oat_<grant id>.<random>`)
// so that revoking the grant — a reused code, a reused refresh token,
// POST /oauth/revoke, a deleted client or user — refuses them at once.
// Refresh tokens are opaque, stored as digests, and rotated at every use.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { SignJWT } from "jose";
import { verifySecret } from "../controller/password-hash";
import type { OAuthClientRow, OAuthClientStore, UserRow, UserStore } from "../store/oauth-clients";
import type { GrantRow, OAuthGrantStore } from "../store/oauth-grants";
import { AUDIENCE, ISSUER } from "./jwt";
import type { SigningKey } from "./key-ring";

export const ACCESS_TOKEN_SECONDS = 15 * 60;
/** How long an authorization code may be exchanged (RFC 6749 §4.1.2: at most 10 minutes; ours 60 s). */
export const CODE_SECONDS = 60;
/** How long a grant's refresh tokens may be used after the grant was made. */
export const REFRESH_GRANT_SECONDS = 30 * 86_400;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const JTI = /^oat_([0-9a-f-]{36})\./;

/** The grant an access token's jti names, if it is one of ours from the token endpoint. */
export function grantOfJti(jti: string | undefined): string | undefined {
  return jti ? JTI.exec(jti)?.[1] : undefined;
}

/** An RFC 6749 §5.2 error: `{error, error_description}` with its status (401 and WWW-Authenticate for invalid_client). */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    super(description);
  }
}

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  refresh_token?: string;
}

/** Who a token speaks for: a user through a client, or a client for itself. */
interface Holder {
  subject: string;
  tenantId: string;
  roles: string[];
  /** The permissions held; "*" all. */
  held: string[];
  /** The explicit permissions the token carries when no scope narrows it. */
  explicit: string[];
}

export interface OAuthTokenOptions {
  clients: OAuthClientStore;
  users: UserStore;
  grants: OAuthGrantStore;
  signingKey: () => Promise<SigningKey>;
  rolePermissions: Record<string, string[]>;
}

export class OAuthTokens {
  constructor(private readonly o: OAuthTokenOptions) {}

  /** A client by id, if there is one (no authentication: for the authorization request). */
  async clientRow(clientId: string): Promise<OAuthClientRow | undefined> {
    return UUID.test(clientId) ? this.o.clients.get(clientId) : undefined;
  }

  /** The client a request authenticates as (secret checked for a confidential one); OAuthError invalid_client otherwise. */
  async client(clientId: string, secret: string | undefined): Promise<OAuthClientRow> {
    const client = await this.clientRow(clientId);
    if (secret !== undefined) {
      // The same work for an unknown client as for a wrong secret.
      if (!(await verifySecret(secret, client?.secretHash)) || !client) throw new OAuthError("invalid_client", "client authentication failed", 401);
      return client;
    }
    if (!client || client.secretHash) throw new OAuthError("invalid_client", "client authentication failed", 401);
    return client;
  }

  /** The scope a client may ask for the holder: words that are permissions the holder holds; "" for all it holds. */
  scope(requested: string | undefined, held: string[]): string {
    const words = [...new Set((requested ?? "").split(" ").filter(Boolean))];
    const beyond = words.filter((w) => !/^[a-z_]+:[a-z_]+$/.test(w) || !(held.includes("*") || held.includes(w)));
    if (beyond.length > 0) throw new OAuthError("invalid_scope", `not granted: ${beyond.join(" ")}`);
    return words.join(" ");
  }

  /** What a user holds, as a token for it carries. */
  userHolder(user: UserRow): Holder {
    return { subject: `user:${user.username}`, tenantId: user.tenantId, roles: user.roles, held: this.permissionsOf(user.roles, []), explicit: [] };
  }

  /** client_credentials (RFC 6749 §4.4): an access token for the client itself, no refresh token. */
  async clientCredentials(client: OAuthClientRow, requestedScope: string | undefined): Promise<{ grant: GrantRow; response: TokenResponse }> {
    if (!client.secretHash || !client.grantTypes.includes("client_credentials")) throw new OAuthError("unauthorized_client", "this client may not use client_credentials");
    const holder: Holder = { subject: `client:${client.id}`, tenantId: client.tenantId, roles: client.roles, held: this.permissionsOf(client.roles, client.permissions), explicit: client.permissions };
    const scope = this.scope(requestedScope, holder.held);
    const grant = await this.o.grants.createGrant(client.id, undefined, scope, ACCESS_TOKEN_SECONDS);
    return { grant, response: await this.tokens(client, grant, holder, false) };
  }

  /** A code for a user's consent, bound to client, redirect URI and PKCE challenge. */
  async authorizationCode(client: OAuthClientRow, user: UserRow, redirectUri: string, codeChallenge: string, scope: string): Promise<string> {
    const grant = await this.o.grants.createGrant(client.id, user.id, scope, REFRESH_GRANT_SECONDS);
    const code = randomBytes(32).toString("base64url");
    await this.o.grants.createCode(code, grant.id, redirectUri, codeChallenge, CODE_SECONDS);
    return code;
  }

  /** authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6): a reused code revokes every token issued from it. */
  async exchangeCode(client: OAuthClientRow, code: string, redirectUri: string | undefined, verifier: string | undefined): Promise<{ grant: GrantRow; response: TokenResponse }> {
    if (!client.grantTypes.includes("authorization_code")) throw new OAuthError("unauthorized_client", "this client may not use authorization_code");
    if (!code) throw new OAuthError("invalid_request", "code is required");
    if (!verifier || !/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) throw new OAuthError("invalid_request", "code_verifier is required: 43 to 128 characters of [A-Za-z0-9-._~]");
    const used = await this.o.grants.consumeCode(code);
    if ("reused" in used) {
      if (used.reused.clientId === client.id) await this.o.grants.revoke(used.reused.id, "authorization code reused");
      throw new OAuthError("invalid_grant", "the authorization code was already used; the tokens issued from it are revoked");
    }
    if ("unknown" in used || used.ok.grant.clientId !== client.id) throw new OAuthError("invalid_grant", "the authorization code is not valid");
    const { grant, expiresAt, redirectUri: boundUri, codeChallenge } = used.ok;
    if (expiresAt.getTime() <= Date.now()) throw new OAuthError("invalid_grant", "the authorization code has expired");
    if ((redirectUri ?? "") !== boundUri) throw new OAuthError("invalid_grant", "redirect_uri does not match the authorization request");
    const challenge = createHash("sha256").update(verifier).digest();
    const expected = Buffer.from(codeChallenge, "base64url");
    if (expected.length !== challenge.length || !timingSafeEqual(challenge, expected)) throw new OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
    if (grant.revokedAt) throw new OAuthError("invalid_grant", "the authorization was revoked");
    const user = grant.userId ? await this.o.users.get(grant.userId) : undefined;
    if (!user) throw new OAuthError("invalid_grant", "the user no longer exists");
    return { grant, response: await this.tokens(client, grant, this.userHolder(user), client.grantTypes.includes("refresh_token")) };
  }

  /** refresh_token (RFC 6749 §6): rotated; a token used twice revokes its whole grant (RFC 9700 §4.14.2). */
  async refresh(client: OAuthClientRow, token: string, requestedScope: string | undefined): Promise<{ grant: GrantRow; response: TokenResponse }> {
    if (!client.grantTypes.includes("refresh_token")) throw new OAuthError("unauthorized_client", "this client may not use refresh_token");
    if (!token) throw new OAuthError("invalid_request", "refresh_token is required");
    const used = await this.o.grants.consumeRefreshToken(token);
    if ("reused" in used) {
      if (used.reused.clientId === client.id) await this.o.grants.revoke(used.reused.id, "refresh token reused");
      throw new OAuthError("invalid_grant", "the refresh token was already used; every token of its grant is revoked");
    }
    if ("unknown" in used || used.ok.clientId !== client.id) throw new OAuthError("invalid_grant", "the refresh token is not valid");
    const grant = used.ok;
    if (grant.revokedAt) throw new OAuthError("invalid_grant", "the refresh token was revoked");
    if (grant.expiresAt.getTime() <= Date.now()) throw new OAuthError("invalid_grant", "the refresh token has expired");
    const user = grant.userId ? await this.o.users.get(grant.userId) : undefined;
    if (!user) throw new OAuthError("invalid_grant", "the user no longer exists");
    // The scope may narrow, never widen (RFC 6749 §6); the user's roles are read afresh.
    const holder = this.userHolder(user);
    const granted = grant.scope ? grant.scope.split(" ") : holder.held;
    const scope = requestedScope ? this.scope(requestedScope, granted) : grant.scope;
    return { grant, response: await this.tokens(client, { ...grant, scope }, holder, true) };
  }

  private async tokens(client: OAuthClientRow, grant: GrantRow, holder: Holder, withRefresh: boolean): Promise<TokenResponse> {
    const scope = this.scope(grant.scope, holder.held);
    const key = await this.o.signingKey();
    const permissions = scope ? scope.split(" ") : holder.explicit;
    const claims = { roles: holder.roles, permissions, ...(holder.tenantId ? { tenant_id: holder.tenantId } : {}), client_id: client.id, ...(scope ? { scope } : {}) };
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, typ: "at+jwt", kid: key.kid })
      .setSubject(holder.subject)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setJti(`oat_${grant.id}.${randomUUID()}`)
      .setIssuedAt()
      .setExpirationTime(`${ACCESS_TOKEN_SECONDS}s`)
      .sign(key.key);
    const response: TokenResponse = { access_token: accessToken, token_type: "Bearer", expires_in: ACCESS_TOKEN_SECONDS, scope: scope || holder.held.join(" ") };
    if (withRefresh) {
      response.refresh_token = `hdbrt_${randomBytes(32).toString("base64url")}`;
      await this.o.grants.createRefreshToken(response.refresh_token, grant.id);
    }
    return response;
  }

  private permissionsOf(roles: string[], explicit: string[]): string[] {
    return [...new Set(explicit.length > 0 ? explicit : roles.flatMap((r) => this.o.rolePermissions[r] ?? []))];
  }
}
