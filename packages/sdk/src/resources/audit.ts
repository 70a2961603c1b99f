// client.audit: AuditService — the audit log of every change and refusal.
import { AuditService, type AuditEvent, type ListAuditEventsRequest } from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

export class Audit extends Resource {
  /** GET /v1/audit-events (ListAuditEvents): `since`/`until` as Dates. */
  list(params: Params<ListAuditEventsRequest> = {}, options?: CallOptions): PagePromise<AuditEvent> {
    return this.paged(AuditService.method.listAuditEvents, params, options);
  }
}
