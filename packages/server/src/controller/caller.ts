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
}

/** Refuses a caller bound to another tenant (NOT_FOUND: it must not learn the resource exists). */
export function checkTenant(caller: Caller | undefined, tenantId: string, what: string): void {
  if (caller?.tenantId && caller.tenantId !== tenantId) throw apiError("NOT_FOUND", `no ${what}`);
}
