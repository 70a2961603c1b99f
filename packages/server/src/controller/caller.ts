// Who is calling, as the rules see it: a plain value the transport fills
// from the credentials (a JWT today) and hands down with the request. The
// controller decides with it; how it was proven stays in transport/auth.
import { apiError } from "../transport/errors";

export interface Caller {
  subject: string;
  roles: string[];
  /** What the caller may do (spec §5); "*" is everything. */
  permissions: Set<string>;
  /** A caller bound to a tenant sees only that tenant. */
  tenantId?: string;
  /** The identity provider that vouches for it (`--trusted-issuer`); unset for the server's own credentials. */
  issuer?: string;
}

/**
 * Who a caller is, as one string: its tenant, its subject and the identity
 * provider that named it (two tenants', or two issuers', "alice" are two
 * callers). What is kept per caller — idempotency keys, rate-limit buckets —
 * is keyed by it.
 */
export function callerIdentity(caller: Caller): string {
  return JSON.stringify(caller.issuer ? [caller.tenantId ?? "", caller.subject, caller.issuer] : [caller.tenantId ?? "", caller.subject]);
}

/** Refuses a caller bound to another tenant (NOT_FOUND: it must not learn the resource exists). */
export function checkTenant(caller: Caller | undefined, tenantId: string, what: string): void {
  if (caller?.tenantId && caller.tenantId !== tenantId) throw apiError("NOT_FOUND", `no ${what}`);
}
