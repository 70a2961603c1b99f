// JWTs (spec §5.1): the server's own (issuer heliosdb.com, keys of
// key-ring.ts) and those of configured identity providers (keys from their
// JWKS URL, claims mapped to tenant, roles and permissions). HS256, RS256
// and ES256 only, never `none`; `iss`, `aud` and `exp` required, `nbf`
// honoured, 30 s of clock skew. A tenant claim is a tenant: present, it must
// be a non-empty string, or the token is refused — never taken for an
// operator's.
import { createHash } from "node:crypto";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { TIERS } from "../controller/api-keys";
import type { Caller } from "../controller/caller";
import type { KeySource, VerificationKey } from "./key-ring";

export const ISSUER = "heliosdb.com";
export const AUDIENCE = "heliosdb-api";
export const ALGORITHMS = ["HS256", "RS256", "ES256"];
export const CLOCK_SKEW_SECONDS = 30;

/** Who is calling, and what they may do: the controller's Caller, as a credential proves it. */
export interface Principal extends Caller {
  /** The credential that proved it: a token's jti (or a digest of the token), an API key's id. */
  credential?: { type: "jwt" | "api_key"; id: string };
  /** The rate-limit tier (spec §7) of an API key, or a JWT's `tier` claim. */
  tier?: string;
}

/** A credential refused: the message is for the client (no secret, no library internals). */
export class CredentialRefused extends Error {
  constructor(
    message: string,
    readonly credentialType: "jwt" | "api_key" | "",
    readonly credentialId = "",
  ) {
    super(message);
  }
}

/** An identity provider whose tokens the server trusts. */
export interface ExternalIssuer {
  /** The `iss` its tokens carry. */
  issuer: string;
  /** Where its public keys are (fetched, cached, fetched again for an unknown kid). */
  jwksUrl: string;
  /** The `aud` its tokens must carry for this server. */
  audience: string;
  /** Claim names (dotted paths into nested claims) for the tenant, the roles and the permissions. */
  tenantClaim: string;
  rolesClaim: string;
  permissionsClaim: string;
  /** Whether a token without the tenant claim is an operator's (default: refused). */
  allowUnbound?: boolean;
  /** Milliseconds between two fetches of its keys at least (default 30 s, jose's). */
  cooldownMs?: number;
}

/** Permissions a role grants when the credential lists none of its own. */
export type RolePermissions = Record<string, string[]>;

interface Verified {
  principal: Principal;
  nbf: number;
  exp: number;
  /** The own key that verified it: a remembered token is refused once that key retires. */
  kid?: string;
}

// The server's own tokens' claims (spec §5.1): without a tenant_id, an operator's.
const OWN_CLAIMS: ExternalIssuer = { issuer: ISSUER, audience: AUDIENCE, jwksUrl: "", tenantClaim: "tenant_id", rolesClaim: "roles", permissionsClaim: "permissions", allowUnbound: true };

/** Tokens remembered at most; past it the oldest is forgotten (and verified again if it comes back). */
const MAX_TOKENS = 10_000;

// Tokens verified once are remembered until they expire. A JWT's signature
// covers its claims, so the same text cannot come to mean something else: a
// changed, forged or re-signed token is another text, verified afresh. Without
// this every call paid a signature check (the API benchmark measures it).
export class JwtVerifier {
  private readonly verified = new Map<string, Verified>();
  private readonly issuers = new Map<string, { config: ExternalIssuer; keys: JWTVerifyGetKey }>();

  constructor(
    private readonly keys: KeySource,
    private readonly roles: RolePermissions,
    issuers: ExternalIssuer[] = [],
  ) {
    for (const config of issuers) {
      const keys = createRemoteJWKSet(new URL(config.jwksUrl), { ...(config.cooldownMs !== undefined ? { cooldownDuration: config.cooldownMs } : {}) });
      this.issuers.set(config.issuer, { config, keys });
    }
  }

  /** The token's principal; throws CredentialRefused when it is not valid now. */
  async principal(token: string): Promise<Principal> {
    const now = Math.floor(Date.now() / 1000);
    const known = this.verified.get(token);
    if (known && now >= known.nbf - CLOCK_SKEW_SECONDS && now < known.exp + CLOCK_SKEW_SECONDS && (!known.kid || this.keys.has(known.kid))) return known.principal;
    if (known) this.verified.delete(token);
    const verified = await this.verify(token);
    if (this.verified.size >= MAX_TOKENS) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, verified);
    return verified.principal;
  }

  private async verify(token: string): Promise<Verified> {
    const digest = `sha256:${createHash("sha256").update(token).digest("hex").slice(0, 16)}`;
    const refuse = (message: string): never => {
      throw new CredentialRefused(message, "jwt", digest);
    };
    let alg: string | undefined;
    let kid: string | undefined;
    let iss: unknown;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
      iss = decodeJwt(token).iss;
    } catch {
      return refuse("the token is malformed");
    }
    if (!alg || !ALGORITHMS.includes(alg)) return refuse(`the token's algorithm ${JSON.stringify(alg ?? null)} is not accepted; use HS256, RS256 or ES256`);
    try {
      if (iss === ISSUER) return await this.verifyOwn(token, alg, kid, digest);
      const external = typeof iss === "string" ? this.issuers.get(iss) : undefined;
      if (!external) return refuse("the token's issuer is not trusted");
      if (alg === "HS256") return refuse("the token's algorithm is not accepted for this issuer; use RS256 or ES256");
      const { config, keys } = external;
      const { payload } = await jwtVerify(token, keys, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: ["RS256", "ES256"],
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ["exp", "iss", "aud"],
      });
      return this.accepted(payload, config, digest);
    } catch (e) {
      if (e instanceof CredentialRefused) throw e;
      return refuse(reason(e));
    }
  }

  private async verifyOwn(token: string, alg: string, kid: string | undefined, digest: string): Promise<Verified> {
    const candidates: VerificationKey[] = kid ? [await this.keys.find(kid)].filter((k) => k !== undefined) : await this.keys.withoutKid();
    const usable = candidates.filter((k) => k.alg === alg);
    if (usable.length === 0) throw new CredentialRefused(kid ? "the token's signing key is unknown or retired" : "the token names no signing key (kid)", "jwt", digest);
    let failure: unknown;
    for (const key of usable) {
      try {
        const { payload } = await jwtVerify(token, key.key, {
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: [key.alg],
          clockTolerance: CLOCK_SKEW_SECONDS,
          requiredClaims: ["exp", "iss", "aud"],
        });
        return { ...this.accepted(payload, OWN_CLAIMS, digest), kid: key.kid };
      } catch (e) {
        if (e instanceof CredentialRefused) throw e;
        failure = e;
      }
    }
    throw new CredentialRefused(reason(failure), "jwt", digest);
  }

  private accepted(payload: JWTPayload, mapping: ExternalIssuer, digest: string): Verified {
    const refuse = (message: string): never => {
      throw new CredentialRefused(message, "jwt", digest);
    };
    const tenant = claim(payload, mapping.tenantClaim);
    if (tenant === undefined && !mapping.allowUnbound) refuse(`the token has no tenant claim (${mapping.tenantClaim})`);
    if (tenant !== undefined && !isTenantId(tenant)) refuse(`the token's tenant claim (${mapping.tenantClaim}) must be a non-empty string`);
    const roles = strings(claim(payload, mapping.rolesClaim));
    if (!roles) return refuse(`the token's ${mapping.rolesClaim} claim must be a list of strings`);
    const explicit = strings(claim(payload, mapping.permissionsClaim));
    if (!explicit) return refuse(`the token's ${mapping.permissionsClaim} claim must be a list of strings`);
    if (payload.sub !== undefined && typeof payload.sub !== "string") refuse("the token's sub claim must be a string");
    const principal: Principal = {
      subject: payload.sub ?? "",
      roles,
      permissions: new Set(explicit.length > 0 ? explicit : roles.flatMap((r) => this.roles[r] ?? [])),
      ...(tenant !== undefined ? { tenantId: tenant as string } : {}),
      // An identity provider's subjects are its own: its "alice" is not the server's.
      ...(mapping !== OWN_CLAIMS ? { issuer: mapping.issuer } : {}),
      credential: { type: "jwt", id: typeof payload.jti === "string" && payload.jti ? payload.jti : digest },
      // The rate-limit tier (spec §7) the token names; another value is no tier (the default's).
      ...(typeof payload.tier === "string" && TIERS.includes(payload.tier) ? { tier: payload.tier } : {}),
    };
    return { principal, nbf: payload.nbf ?? 0, exp: payload.exp! };
  }
}

/** A tenant id as a credential may carry it: a non-empty string of at most 255 characters, no control characters. */
export function isTenantId(value: unknown): value is string {
  // eslint-disable-next-line no-control-regex
  return typeof value === "string" && value.length > 0 && value.length <= 255 && !/[\u0000-\u001f\u007f]/.test(value);
}

// A claim by dotted path ("realm_access.roles").
function claim(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

// A list of strings: absent is empty; a space-separated string (OAuth's `scope`) is its words.
function strings(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  if (typeof value === "string") return value.split(" ").filter(Boolean);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value as string[];
  return undefined;
}

// jose's error, in words for the client (its own texts name its internals).
function reason(e: unknown): string {
  const { code, claim: name } = (e ?? {}) as { code?: string; claim?: string; reason?: string };
  const missing = (e as { reason?: string })?.reason === "missing";
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return "the token has expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (missing) return `the token has no ${name} claim`;
      if (name === "nbf") return "the token is not valid yet (nbf)";
      if (name === "iss") return "the token's issuer is not accepted";
      if (name === "aud") return "the token's audience is not accepted";
      return `the token's ${name ?? "claims"} claim is not valid`;
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "the token's signature is not valid";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "the token's algorithm is not accepted";
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return "the token's signing key is unknown";
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return "the issuer's keys cannot be fetched";
    default:
      return "the token is not valid";
  }
}
