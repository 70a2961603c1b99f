// Every event type the event log holds, with its severity: the filter of
// StreamReplicationEvents accepts these names, and docs/observability.md
// lists them (a test checks the two agree). A new kind of event is a line
// here and an append where it happens (EventStore.append); the streams need
// nothing more.

/** The spec's severities, in its spelling. */
export const SEVERITIES = ["Info", "Warning", "Error", "Critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

export const EVENT_TYPES: Record<string, { severity: string; what: string }> = {
  StatusChanged: { severity: "Info (Error when the new status is Error)", what: "the replication's status changed: details from, to" },
  InitialSyncStarted: { severity: "Info", what: "the copy of a table began: details table, rows_estimated, bytes_estimated" },
  InitialSyncProgress: { severity: "Info", what: "a quarter of a table copied (25, 50, 75): details table, progress_percent, rows_copied, rows_estimated, bytes_copied, bytes_estimated" },
  InitialSyncCompleted: { severity: "Info", what: "a table copied: details table, rows_copied, bytes_copied" },
  TablesSynced: { severity: "Info", what: "tables added to the publication (or whose row filter changed) copied again: details tables, sync_lsn" },
  ReplicationError: {
    severity: "Error (Critical when the source's commits could be left waiting)",
    what: "an attempt failed: details error_code, sqlstate (when PostgreSQL answered one), side (source, target, engine), retryable, retry_count, retry_in_seconds",
  },
  ReplicationRecovered: { severity: "Info", what: "streaming again after failed attempts: details retry_count" },
  REPLICATION_LAG_EXCEEDED: { severity: "Warning", what: "lag passed max_lag_seconds: details current_lag_seconds, max_lag_seconds" },
  ReplicationLagRecovered: { severity: "Info", what: "lag back within max_lag_seconds: details current_lag_seconds, max_lag_seconds" },
  WalRetentionHigh: { severity: "Warning", what: "a paused replication's slot retains more WAL than the threshold: details retained_bytes" },
  ConflictDetected: { severity: "Warning", what: "a change met a target row it did not expect and was not applied: details table, key, resolution" },
  ConflictResolved: { severity: "Warning", what: "a change met a target row it did not expect; the source won: details table, key, resolution" },
  SchemaChanged: { severity: "Info", what: "the target followed a source schema change: details table" },
  ConfigurationWarning: { severity: "Warning", what: "the source accepted the configuration with a caveat" },
  ConfigChanged: { severity: "Info", what: "the configuration was updated: details fields, applied (live, restart, resync), by" },
  AutomaticFailoverPending: {
    severity: "Warning",
    what: "the source of a replication with automatic failover stopped answering: a failover follows in source_unreachable_seconds unless it answers again: details source_unreachable_since, source_unreachable_seconds, reason",
  },
  AutomaticFailoverCancelled: { severity: "Info", what: "the source answered again before the countdown ended: no automatic failover: details source_unreachable_since" },
  AutomaticFailoverHeld: {
    severity: "Warning",
    what: "the countdown ended but the failover was not triggered (the replica not fit, or the request refused), looked at again every pass: details source_unreachable_since, reason",
  },
  FailoverStarted: { severity: "Info", what: "a failover was accepted: details failover_id, trigger, reason, force, update_routing, reverse_replication" },
  FailoverStep: {
    severity: "Info (Warning when skipped or rolled back, Error when failed or rolling back)",
    what: "a failover's step began, ended or was rolled back, or the failover began to roll back: details failover_id, step, status, attempt, duration_ms, message",
  },
  FailoverCompleted: { severity: "Info (Warning when the source was unreachable)", what: "the replica is the primary: details failover_id, downtime_ms, final_lsn, last_applied_lsn, reverse_replication_id" },
  FailoverFailed: { severity: "Error", what: "a failover ended without promoting: details failover_id, status, message" },
  MigrationStarted: {
    severity: "Info",
    what: "a migration was accepted: details migration_id, source_region, target_region, target_connection_id, target_database, cutover_strategy",
  },
  MigrationPhase: {
    severity: "Info (Warning when rolled back or rolling back after a cancel, Error when failed or rolling back after a failure)",
    what: "a migration's phase began, ended or was rolled back, or the migration began to roll back: details migration_id, phase, status, attempt, duration_ms, message",
  },
  MigrationProgress: {
    severity: "Info",
    what: "BulkCopy passed a tenth of the copy (details migration_id, phase, progress_percent, data_size_gb, estimated_data_size_gb, estimated_completion), or CDCCatchup's lag held under the threshold (lag_seconds, cdc_lag_threshold_seconds, waiting_for)",
  },
  MigrationCompleted: {
    severity: "Info (Error when the target was not verified equal to the source after the switch)",
    what: "the tenant's routing names the target: details migration_id, downtime_ms, verified",
  },
  MigrationFailed: { severity: "Error", what: "a migration failed and was rolled back (or its rollback failed): details migration_id, status, rollback_status, message" },
  MigrationCancelled: { severity: "Warning", what: "a migration was cancelled and rolled back: details migration_id, rollback_status, message" },
};

export function isSeverity(value: string): value is Severity {
  return (SEVERITIES as readonly string[]).includes(value);
}
