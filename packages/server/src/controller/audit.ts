// Who may read the audit log, and which part: the RPC needs audit:read
// (Admin); a caller bound to a tenant reads only its tenant's events.
import type { AuditEventStore, AuditFilter } from "../store/audit-events";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { paging } from "./paging";
import { Violations } from "./violations";

export class AuditController {
  constructor(private readonly events: AuditEventStore) {}

  async list(caller: Caller | undefined, filter: AuditFilter, page: number, pageSize: number) {
    const p = paging(page, pageSize);
    if (filter.since && filter.until && filter.since >= filter.until) new Violations().add("until", "must be after since").check();
    if (caller?.tenantId && filter.tenantId && filter.tenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only list tenant ${caller.tenantId}`, { tenant_id: filter.tenantId });
    }
    const scoped = { ...filter, ...(caller?.tenantId ? { tenantId: caller.tenantId } : {}) };
    const [rows, total] = await this.events.list(scoped, (p.page - 1) * p.pageSize, p.pageSize);
    return { rows, total, ...p };
  }
}
