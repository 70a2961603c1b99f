// Authentication and authorization for every protocol at once: one Connect
// interceptor (REST calls reach it too, through the in-process transport).
// Tokens are JWTs (spec §5.1) signed with a key kept in the data directory;
// the security issue adds API keys, OAuth and JWKS on top.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Interceptor } from "@connectrpc/connect";
import { jwtVerify, SignJWT } from "jose";
import type { Caller } from "../controller/caller";
import { callerKey } from "../services/context";
import { apiError } from "./errors";

export const ISSUER = "heliosdb.com";
export const AUDIENCE = "heliosdb-api";

/** Who is calling, and what they may do: the controller's Caller, as a token proves it. */
export type Principal = Caller;

/** Where the principal travels in a call's context (services read it as the caller). */
export const principalKey = callerKey;

/** Permissions a role grants when the token lists none of its own. */
export const ROLE_PERMISSIONS: Record<string, string[]> = {
  Admin: ["*"],
  Operator: [
    "replication:create", "replication:read", "replication:update", "replication:delete",
    "failover:trigger", "failover:read", "migration:manage", "migration:read",
    "metrics:read", "connection:read", "routing:read",
  ],
  Viewer: ["replication:read", "failover:read", "migration:read", "metrics:read", "connection:read", "routing:read"],
};

/** The permission each RPC needs; RPCs not listed (health, reflection) are public. */
export const RPC_PERMISSIONS: Record<string, string> = {
  "ReplicationService.CreateReplication": "replication:create",
  "ReplicationService.GetReplication": "replication:read",
  "ReplicationService.ListReplications": "replication:read",
  "ReplicationService.UpdateReplication": "replication:update",
  "ReplicationService.DeleteReplication": "replication:delete",
  "ReplicationService.StartReplication": "replication:update",
  "ReplicationService.PauseReplication": "replication:update",
  "ReplicationService.StopReplication": "replication:update",
  "ReplicationService.StreamReplicationMetrics": "replication:read",
  "ReplicationService.StreamReplicationEvents": "replication:read",
  "FailoverService.TriggerFailover": "failover:trigger",
  "FailoverService.GetFailoverStatus": "failover:read",
  "FailoverService.ListFailoverHistory": "failover:read",
  "MigrationService.StartMigration": "migration:manage",
  "MigrationService.CancelMigration": "migration:manage",
  "MigrationService.GetMigrationStatus": "migration:read",
  "MigrationService.ListMigrations": "migration:read",
  "MetricsService.GetReplicationMetrics": "metrics:read",
  "MetricsService.GetAggregatedMetrics": "metrics:read",
  "ConnectionService.RegisterConnection": "connection:manage",
  "ConnectionService.GetConnection": "connection:read",
  "ConnectionService.ListConnections": "connection:read",
  "ConnectionService.DeleteConnection": "connection:manage",
  "ConnectionService.GrantConnection": "connection:manage",
  "ConnectionService.RevokeConnectionGrant": "connection:manage",
  "RoutingService.GetTenantRouting": "routing:read",
  "RoutingService.WatchTenantRouting": "routing:read",
};

/** The HS256 signing key: `<dataDir>/jwt.key`, created on first use (mode 0600). */
export function loadSigningKey(dataDir: string): Uint8Array {
  const file = join(dataDir, "jwt.key");
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600, flag: "wx" });
  }
  return Buffer.from(readFileSync(file, "utf8").trim(), "hex");
}

export interface TokenRequest {
  subject?: string;
  tenantId?: string;
  roles: string[];
  permissions?: string[];
  /** Lifetime, e.g. "1h", "30m", "7d". */
  ttl?: string;
}

export async function issueToken(key: Uint8Array, request: TokenRequest): Promise<string> {
  return new SignJWT({
    roles: request.roles,
    permissions: request.permissions ?? [],
    ...(request.tenantId ? { tenant_id: request.tenantId } : {}),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(request.subject ?? "cli")
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(request.ttl ?? "1h")
    .sign(key);
}

export async function verifyToken(key: Uint8Array | CryptoKey, token: string): Promise<Principal> {
  return (await verifyClaims(key, token)).principal;
}

/** The principal of a valid token and the seconds (epoch) between which it is valid. */
export async function verifyClaims(key: Uint8Array | CryptoKey, token: string): Promise<{ principal: Principal; exp?: number; nbf?: number }> {
  const { payload } = await jwtVerify(token, key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ["HS256"] });
  const roles = Array.isArray(payload.roles) ? payload.roles.map(String) : [];
  const explicit = Array.isArray(payload.permissions) ? payload.permissions.map(String) : [];
  const permissions = new Set(explicit.length > 0 ? explicit : roles.flatMap((r) => ROLE_PERMISSIONS[r] ?? []));
  const principal: Principal = {
    subject: String(payload.sub ?? ""),
    roles,
    permissions,
    ...(typeof payload.tenant_id === "string" && payload.tenant_id ? { tenantId: payload.tenant_id } : {}),
  };
  return { principal, ...(payload.exp !== undefined ? { exp: payload.exp } : {}), ...(payload.nbf !== undefined ? { nbf: payload.nbf } : {}) };
}

// Tokens verified once and remembered until they expire. A JWT's signature
// covers its claims, so the same text cannot come to mean something else: a
// changed, forged or re-signed token is another text and is verified afresh,
// and a remembered one is refused the second its `exp` passes, as jose
// would. Without this, every call paid a WebCrypto HMAC and a key import.
interface Verified {
  principal: Principal;
  /** Valid from `nbf` (inclusive) until `exp` (exclusive), in epoch seconds. */
  nbf: number;
  exp: number;
}

/** Tokens remembered at most; past it the oldest is forgotten (it is verified again if it comes back). */
const MAX_TOKENS = 10_000;

export class VerifiedTokens {
  private readonly verified = new Map<string, Verified>();
  // Imported once: jose would import raw key bytes again for every token.
  private key: Promise<CryptoKey> | undefined;

  constructor(private readonly secret: Uint8Array) {}

  /** The token's principal; throws (jose's error) when the token is not valid now. */
  async principal(token: string): Promise<Principal> {
    const now = Math.floor(Date.now() / 1000);
    const known = this.verified.get(token);
    if (known && now >= known.nbf && now < known.exp) return known.principal;
    if (known) this.verified.delete(token);
    this.key ??= crypto.subtle.importKey("raw", new Uint8Array(this.secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    const { principal, exp, nbf } = await verifyClaims(await this.key, token);
    // A token without `exp` never expires by itself: it is not remembered, so it is checked on every call.
    if (exp !== undefined) {
      if (this.verified.size >= MAX_TOKENS) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(token, { principal, nbf: nbf ?? 0, exp });
    }
    return principal;
  }
}

/**
 * Who the request's credentials prove the caller is; rejects with the §6
 * UNAUTHORIZED error. The one place that decides: the interceptor calls it,
 * and the transports call it before they read a request's body (an
 * unauthenticated client cannot make the server buffer anything).
 */
export type Authenticate = (headers: Headers) => Promise<Principal>;

export function authenticator(key: Uint8Array): Authenticate {
  const tokens = new VerifiedTokens(key);
  return async (headers) => {
    const token = /^Bearer\s+(.+)$/i.exec(headers.get("authorization") ?? "")?.[1];
    if (!token) throw apiError("UNAUTHORIZED", "missing credentials: send Authorization: Bearer <token>");
    try {
      return await tokens.principal(token);
    } catch (e) {
      // The token library's text says how verification failed: the client learns that it did, and whether the token expired.
      const expired = (e as { code?: unknown }).code === "ERR_JWT_EXPIRED";
      throw apiError("UNAUTHORIZED", expired ? "invalid token: expired" : "invalid token: malformed, not yet valid, or not signed by this server");
    }
  };
}

/** Whether an RPC ("ReplicationService.GetReplication") needs credentials: RPCs without a permission are public. */
export function needsCredentials(rpc: string): boolean {
  return Object.hasOwn(RPC_PERMISSIONS, rpc);
}

/** Verifies the credentials (the key's tokens, or `authenticate`) and the RPC's permission; puts the principal in the call's context. */
export function authInterceptor(credentials: Uint8Array | Authenticate): Interceptor {
  const authenticate = credentials instanceof Uint8Array ? authenticator(credentials) : credentials;
  return (next) => async (req) => {
    const needed = RPC_PERMISSIONS[`${req.service.name}.${req.method.name}`];
    if (!needed) return next(req);
    const principal = await authenticate(req.header);
    if (!principal.permissions.has("*") && !principal.permissions.has(needed)) {
      throw apiError("FORBIDDEN", `this call needs the permission ${needed}`, { required_permission: needed });
    }
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}

// The tenant rule is the controller's; services/routing.ts still imports it from here.
