// Authentication and authorization for every protocol at once: one Connect
// interceptor (REST and gRPC calls reach it through the in-process invoker,
// WebSocket upgrades through upgrade.ts). A call proves who it is with a JWT
// (`Authorization: Bearer`, jwt.ts) or an API key (`X-API-Key`,
// api-key-auth.ts); each RPC needs one permission (RPC_PERMISSIONS); every
// refusal and every mutating call is audited.
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { callerKey } from "../services/context";
import type { AuditEvent } from "../store/audit-events";
import type { ApiKeyVerifier } from "./api-key-auth";
import { auditEvent, resourceOf, type AuditSink } from "./audit";
import { apiError, apiErrorOf, asApiError } from "./errors";
import { REQUEST_ID } from "./interceptors";
import { localKid, StaticKeys, type SigningKey } from "./key-ring";
import { AUDIENCE, CredentialRefused, ISSUER, JwtVerifier, type Principal } from "./jwt";

export { AUDIENCE, ISSUER, type Principal };

/** Where the principal travels in a call's context (services read it as the caller). */
export const principalKey = callerKey;

/** Permissions a role grants when the credential lists none of its own. */
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
  "MigrationService.CutoverMigration": "migration:manage",
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
  "ApiKeyService.CreateApiKey": "apikey:manage",
  "ApiKeyService.GetApiKey": "apikey:read",
  "ApiKeyService.ListApiKeys": "apikey:read",
  "ApiKeyService.RevokeApiKey": "apikey:manage",
  "ApiKeyService.RotateApiKey": "apikey:manage",
  "AuditService.ListAuditEvents": "audit:read",
  "OAuthClientService.CreateOAuthClient": "credential:manage",
  "OAuthClientService.GetOAuthClient": "credential:manage",
  "OAuthClientService.ListOAuthClients": "credential:manage",
  "OAuthClientService.DeleteOAuthClient": "credential:manage",
  "UserService.CreateUser": "credential:manage",
  "UserService.GetUser": "credential:manage",
  "UserService.ListUsers": "credential:manage",
  "UserService.DeleteUser": "credential:manage",
  "UserService.SetUserPassword": "credential:manage",
};

/** Whether an RPC ("ReplicationService.GetReplication") needs credentials: RPCs without a permission are public. */
export function needsCredentials(rpc: string): boolean {
  return Object.hasOwn(RPC_PERMISSIONS, rpc);
}

/** Whether a principal holds a permission ("*" holds every one). */
export function holds(principal: { permissions: Set<string> }, permission: string): boolean {
  return principal.permissions.has("*") || principal.permissions.has(permission);
}

/** The HS256 key of a data directory: `<dataDir>/jwt.key`, created on first use (mode 0600). The server verifies its tokens. */
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

/** The claims of a token the server prints (spec §5.1), without iss/aud/iat/exp. */
export function tokenClaims(request: TokenRequest): Record<string, unknown> {
  return {
    roles: request.roles,
    permissions: request.permissions ?? [],
    ...(request.tenantId ? { tenant_id: request.tenantId } : {}),
  };
}

/**
 * A token for `request`, signed with a data directory's HS256 key (its kid
 * names the key) or with a signing key of the control plane (its current
 * one: SigningKeyRing.currentKey()).
 */
export async function issueToken(key: Uint8Array | SigningKey, request: TokenRequest): Promise<string> {
  const [alg, kid] = key instanceof Uint8Array ? ["HS256", localKid(key)] : [key.alg, key.kid];
  return new SignJWT(tokenClaims(request))
    .setProtectedHeader({ alg, typ: "JWT", kid })
    .setSubject(request.subject ?? "cli")
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(request.ttl ?? "1h")
    .sign(key instanceof Uint8Array ? key : key.key);
}

export interface AuthenticatorOptions {
  jwt: JwtVerifier;
  apiKeys?: ApiKeyVerifier;
  audit?: AuditSink;
  /** The client address of a request in flight, by request id (transport/audit.ts). */
  addressOf?: (requestId: string | null) => string;
  log?: (message: string) => void;
  /** Whether a verified token was revoked since it was issued (OAuth grants: transport/oauth.ts). */
  revoked?: (principal: Principal) => Promise<boolean>;
}

/**
 * Who a request's credentials prove the caller is; rejects with the §6
 * UNAUTHORIZED error (and audits the refusal; `rpc` names the call in the
 * audit log). The one place that decides: the interceptor calls it, and so
 * may a transport before it reads a request's body.
 */
export type Authenticate = (headers: Headers, rpc?: string) => Promise<Principal>;

// Refusals the Authenticator made (and audited).
const refusals = new WeakSet<Error>();

/** What a request's credentials proved, kept for the rest of the request. */
interface Admitted {
  principal: Principal;
  authorization: string | null;
  apiKey: string | null;
  /** Set while the principal is only as this server keeps it (identify), until confirmed. */
  confirm?: () => Promise<Principal>;
  confirmed?: Promise<Principal>;
}

/**
 * Decides who a request's credentials prove, for the interceptor and for any
 * check before a body is read. In two steps for the calls of the interceptor
 * chain: `identify` answers from what this server keeps (an API key's row)
 * at once, and `confirm` waits for the round trip that proves nothing
 * changed it since the request arrived — which the call's rate-limit
 * decision, on the same session, has already made by then. `authenticate`
 * is both, for everything else.
 */
export class Authenticator {
  // The principal found for a request's headers (one object per request), with the credential it was found for:
  // the guard identifies before the body is read and the interceptors ask again for the same headers, and the
  // answer stands for the whole request (it was checked as the request arrived), so the second ask costs no second
  // HMAC, barrier round trip or revocation check.
  private readonly admitted = new WeakMap<Headers, Admitted>();

  constructor(private readonly options: AuthenticatorOptions) {}

  /** The principal of `Authorization: Bearer <JWT>` or `X-API-Key`, confirmed (a function of its own: it may be passed on). */
  readonly authenticate: Authenticate = async (headers, rpc = "") => {
    await this.identify(headers, rpc);
    return this.confirm(headers, rpc);
  };

  /** The principal as this server knows it, perhaps not yet confirmed: it must be, by `confirm`, before the call runs. */
  readonly identify: Authenticate = async (headers, rpc = "") => {
    const authorization = headers.get("authorization");
    const apiKey = headers.get("x-api-key");
    const known = this.admitted.get(headers);
    if (known && known.authorization === authorization && known.apiKey === apiKey) return known.principal;
    try {
      const { principal, confirm } = await this.principal(authorization, apiKey);
      this.admitted.set(headers, { principal, authorization, apiKey, ...(confirm ? { confirm } : {}) });
      return principal;
    } catch (e) {
      throw this.refusal(e, headers, rpc);
    }
  };

  /** The request's principal once confirmed (the same object unless its credential changed meanwhile). */
  async confirm(headers: Headers, rpc = ""): Promise<Principal> {
    const known = this.admitted.get(headers);
    if (!known?.confirm) return known?.principal ?? this.authenticate(headers, rpc);
    known.confirmed ??= known.confirm().then(
      (principal) => {
        known.principal = principal;
        delete known.confirm;
        return principal;
      },
      (e: unknown) => {
        this.admitted.delete(headers);
        throw this.refusal(e, headers, rpc);
      },
    );
    return known.confirmed;
  }

  // The §6 error for a credential that failed (audited), or SERVICE_UNAVAILABLE when it could not be checked.
  private refusal(e: unknown, headers: Headers, rpc: string): Error {
    if (!(e instanceof CredentialRefused)) {
      // Not a verdict on the credential (the control plane did not answer): the client keeps it and retries.
      this.options.log?.(`credentials not checked: ${(e as Error)?.message ?? String(e)}`);
      return apiError("SERVICE_UNAVAILABLE", "the credentials cannot be checked now; retry shortly", {}, 1);
    }
    void this.audit(headers, rpc, "UNAUTHORIZED", e.message, { credentialType: e.credentialType, credentialId: e.credentialId });
    const refused = apiError("UNAUTHORIZED", e.message, e.credentialType ? { credential: e.credentialType } : {});
    refusals.add(refused);
    return refused;
  }

  private async principal(authorization: string | null, apiKey: string | null): Promise<{ principal: Principal; confirm?: () => Promise<Principal> }> {
    if (authorization && apiKey) throw new CredentialRefused("send one credential: Authorization or X-API-Key, not both", "");
    if (apiKey) {
      if (!this.options.apiKeys) throw new CredentialRefused("API keys are not accepted here", "api_key");
      return this.options.apiKeys.identify(apiKey.trim());
    }
    if (!authorization) throw new CredentialRefused("missing credentials: send Authorization: Bearer <token> or X-API-Key: <key>", "");
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    if (!token) throw new CredentialRefused("the Authorization header must be Bearer <token>", "jwt");
    const principal = await this.options.jwt.principal(token);
    if (await this.options.revoked?.(principal)) throw new CredentialRefused("the token has been revoked", "jwt", principal.credential?.id);
    return { principal };
  }

  /** Records an event; the promise settles when it is written (never rejects). */
  audit(headers: Headers, rpc: string, outcome: string, message: string, fields: Partial<AuditEvent>): Promise<void> {
    if (!this.options.audit) return Promise.resolve();
    const requestId = headers.get(REQUEST_ID);
    return this.options.audit.record(
      auditEvent({ ...fields, rpc, outcome, message, requestId: requestId ?? "", clientAddress: this.options.addressOf?.(requestId) ?? "" }),
    );
  }
}

// RPCs that change nothing: reads and streams are not audited unless refused.
const READS = /^(Get|List|Stream|Watch)/;

/**
 * Identifies the caller of every non-public RPC, checks its permission,
 * audits; puts the principal in the call's context. With an Authenticator
 * the principal may not be confirmed yet (Authenticator.identify): use it
 * through `authInterceptors`, which confirms it before the call runs.
 */
export function authInterceptor(credentials: Authenticator | Uint8Array): Interceptor {
  const auth = credentials instanceof Uint8Array ? new Authenticator({ jwt: new JwtVerifier(new StaticKeys(credentials), ROLE_PERMISSIONS) }) : credentials;
  return (next) => async (req) => {
    const rpc = `${req.service.name}.${req.method.name}`;
    const needed = RPC_PERMISSIONS[rpc];
    if (!needed) return next(req);
    const principal = await auth.identify(req.header, rpc);
    await authorize(auth, req, rpc, needed, principal);
    if (req.stream || READS.test(req.method.name)) return next(req);
    const fields = who(req, principal);
    try {
      const res = await next(req);
      await auth.audit(req.header, rpc, "OK", "", { ...fields, resource: fields.resource || resourceOf(res.message) });
      return res;
    } catch (e) {
      // A credential refused as the call was confirmed was audited as it was refused.
      if (refusals.has(e as Error)) throw e;
      const error = apiErrorOf(asApiError(e));
      await auth.audit(req.header, rpc, error?.code ?? "INTERNAL_ERROR", error?.message ?? "", fields);
      throw e;
    }
  };
}

/**
 * The interceptors that authenticate a call, with `between` run after the
 * caller is identified and before it is confirmed: with the rate limiter
 * there, its decision is the round trip that confirms (no trip of its own).
 */
export function authInterceptors(auth: Authenticator, between: Interceptor[] = []): Interceptor[] {
  return [authInterceptor(auth), ...between, confirmInterceptor(auth)];
}

// Confirms the principal authInterceptor identified: a credential changed meanwhile is checked again, a revoked one refused.
function confirmInterceptor(auth: Authenticator): Interceptor {
  return (next) => async (req) => {
    const rpc = `${req.service.name}.${req.method.name}`;
    const needed = RPC_PERMISSIONS[rpc];
    if (!needed) return next(req);
    const identified = req.contextValues.get(principalKey) as Principal | undefined;
    const principal = await auth.confirm(req.header, rpc);
    if (principal !== identified) await authorize(auth, req, rpc, needed, principal);
    return next(req);
  };
}

// Refuses (FORBIDDEN, audited) a principal without the permission the RPC needs; else puts it in the call's context.
async function authorize(auth: Authenticator, req: UnaryRequest | StreamRequest, rpc: string, needed: string, principal: Principal): Promise<void> {
  if (!holds(principal, needed)) {
    const message = `this call needs the permission ${needed}`;
    await auth.audit(req.header, rpc, "FORBIDDEN", message, who(req, principal));
    throw apiError("FORBIDDEN", message, { required_permission: needed });
  }
  req.contextValues.set(principalKey, principal);
}

// The audit fields of a call: made only for a call that is audited (reads that pass are not).
function who(req: UnaryRequest | StreamRequest, principal: Principal): Partial<AuditEvent> & { resource: string } {
  return {
    principal: principal.subject,
    credentialType: principal.credential?.type ?? "",
    credentialId: principal.credential?.id ?? "",
    tenantId: principal.tenantId ?? tenantOf(req.message),
    resource: req.stream ? "" : resourceOf(req.message),
  };
}

// The tenant an operator's request names (CreateReplicationRequest.tenant_id), for the audit log.
function tenantOf(message: unknown): string {
  const tenantId = (message as { tenantId?: unknown } | undefined)?.tenantId;
  return typeof tenantId === "string" ? tenantId : "";
}
