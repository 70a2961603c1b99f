// The event log: what happened to each replication. Ids ascend in the
// order events are recorded, so their writer records them in turn.
import type pg from "pg";

export interface EventRecord {
  replicationId: string;
  tenantId: string;
  type: string;
  severity: string;
  message: string;
  details: Record<string, unknown>;
}

export class EventStore {
  constructor(private readonly db: pg.Pool) {}

  async record(e: EventRecord): Promise<void> {
    await this.db.query(
      "INSERT INTO events (replication_id, tenant_id, event_type, severity, message, details) VALUES ($1, $2, $3, $4, $5, $6)",
      [e.replicationId, e.tenantId, e.type, e.severity, e.message, JSON.stringify(e.details)],
    );
  }
}
