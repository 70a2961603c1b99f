// AuditService: the audit log, newest first. Translates messages; the
// controller decides what the caller may read.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AuditEventSchema, ListAuditEventsResponseSchema, type AuditService } from "@heliosdb/replication-proto";
import type { AuditController } from "../controller/audit";
import type { AuditRow } from "../store/audit-events";
import { callerOf } from "./context";
import { pagination } from "./views";

function auditEventMessage(row: AuditRow) {
  return create(AuditEventSchema, {
    eventId: BigInt(row.id),
    time: timestampFromDate(row.at),
    principal: row.principal,
    credentialType: row.credentialType,
    credentialId: row.credentialId,
    tenantId: row.tenantId,
    rpc: row.rpc,
    resource: row.resource,
    outcome: row.outcome,
    message: row.message,
    requestId: row.requestId,
    clientAddress: row.clientAddress,
  });
}

export function auditService(controller: AuditController): ServiceImpl<typeof AuditService> {
  return {
    async listAuditEvents(req, ctx) {
      const filter = {
        ...(req.tenantId ? { tenantId: req.tenantId } : {}),
        ...(req.principal ? { principal: req.principal } : {}),
        ...(req.rpc ? { rpc: req.rpc } : {}),
        ...(req.outcome ? { outcome: req.outcome } : {}),
        ...(req.since ? { since: timestampDate(req.since) } : {}),
        ...(req.until ? { until: timestampDate(req.until) } : {}),
      };
      const { rows, total, page, pageSize } = await controller.list(callerOf(ctx), filter, req.page, req.pageSize);
      return create(ListAuditEventsResponseSchema, { events: rows.map(auditEventMessage), pagination: pagination(page, pageSize, total) });
    },
  };
}
