// Messages built from what the control plane stored and the engine observed.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CheckpointSchema,
  PaginationSchema,
  ReplicationSchema,
  ReplicationStatus,
  type Pagination,
  type Replication,
} from "@heliosdb/replication-proto";
import { apiError } from "../transport/errors";
import type { ObservedFigures } from "@heliosdb/replication-engine";
import type { ReplicationRow, StoredFigures } from "../store/replications";

/** A replication's figures: live from the engine when this node runs it, else as its owner stored them. */
export type Figures = ObservedFigures | StoredFigures;

/** The spec's status name ("Streaming") as the enum. */
export function statusOf(name: string): ReplicationStatus {
  return ReplicationStatus[name.toUpperCase() as keyof typeof ReplicationStatus] ?? ReplicationStatus.INITIALIZING;
}

export function checkpointOf(figures: Figures | null | undefined) {
  const c = figures?.lastCheckpoint;
  if (!c) return undefined;
  const at = typeof c.timestamp === "string" ? new Date(c.timestamp) : c.timestamp;
  return create(CheckpointSchema, { lsn: BigInt(c.lsn), timestamp: timestampFromDate(at), transactionId: BigInt(c.transactionId) });
}

/**
 * A replication as the API shows it. `view` picks the optional parts: the
 * create response carries the estimates, list items the summary fields.
 */
export function replicationMessage(row: ReplicationRow, figures: Figures | null, view: "full" | "created" | "list" = "full"): Replication {
  const status = figures && row.desired === "running" ? figures.status : row.status;
  const health = figures && row.desired === "running" ? figures.health : row.status === "Error" ? "Unhealthy" : "Healthy";
  const f = figures;
  const checkpoint = checkpointOf(f);
  const message = create(ReplicationSchema, {
    id: row.id,
    tenantId: row.tenantId,
    status: statusOf(status),
    health,
    source: row.source,
    target: row.target,
    config: row.config,
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
    currentState: {
      replicationLagSeconds: f?.lagSeconds ?? 0,
      replicationLagBytes: BigInt(f?.lagBytes ?? 0),
      ...(checkpoint ? { lastCheckpoint: checkpoint } : {}),
      throughput: {
        rowsPerSecond: f?.rowsPerSecond ?? 0,
        bytesPerSecond: BigInt(Math.round(f?.bytesPerSecond ?? 0)),
        transactionsPerSecond: f?.transactionsPerSecond ?? 0,
      },
      health,
      walRetainedBytes: BigInt(f?.walRetainedBytes ?? 0),
      ...(f && f.initialSync.length > 0
        ? {
            initialSync: {
              progressPercent: progress(f),
              tables: f.initialSync.map((t) => ({
                table: t.table,
                rowsCopied: BigInt(t.rowsCopied),
                rowsEstimated: BigInt(t.rowsEstimated),
                bytesCopied: BigInt(t.bytesCopied),
                bytesEstimated: BigInt(t.bytesEstimated),
                completed: t.completed,
              })),
            },
          }
        : {}),
    },
    statistics: {
      totalRowsReplicated: BigInt(f?.totalRows ?? 0),
      totalBytesReplicated: BigInt(f?.totalBytes ?? 0),
      uptimeSeconds: BigInt(f?.uptimeSeconds ?? 0),
      avgCompressionRatio: f?.compressionRatio ?? 1,
      conflictsDetected: f?.conflictsDetected ?? 0,
      conflictsResolved: f?.conflictsResolved ?? 0,
      totalTransactionsReplicated: BigInt(f?.totalTransactions ?? 0),
    },
  });
  if (view === "created") {
    // Nothing has been observed yet: the spec's create response carries estimates instead.
    message.currentState = undefined;
    message.statistics = undefined;
    if (row.estimatedDataSizeGb !== null) message.estimatedDataSizeGb = row.estimatedDataSizeGb;
    if (row.estimatedInitialSyncDurationHours !== null) message.estimatedInitialSyncDurationHours = row.estimatedInitialSyncDurationHours;
  }
  if (view === "list") {
    // The spec's list item (§2.1.3): a summary; GET /v1/replications/{id} has the rest.
    return create(ReplicationSchema, {
      id: row.id,
      tenantId: row.tenantId,
      status: message.status,
      health,
      qosTier: row.config.qosTier,
      replicationLagSeconds: f?.lagSeconds ?? 0,
      createdAt: message.createdAt,
    });
  }
  return message;
}

// Rows copied over rows estimated; bytes over the heap's size when the catalog
// has no row estimate (a table never analyzed).
function progress(f: Figures): number {
  if (f.initialSync.every((t) => t.completed)) return 100;
  const sum = (key: "rowsEstimated" | "rowsCopied" | "bytesEstimated" | "bytesCopied") => f.initialSync.reduce((n, t) => n + t[key], 0);
  const rows = sum("rowsEstimated");
  const bytes = sum("bytesEstimated");
  const done = rows > 0 ? sum("rowsCopied") / rows : bytes > 0 ? sum("bytesCopied") / bytes : 0;
  return Math.min(99.9, Math.round(done * 1000) / 10);
}

export const MAX_PAGE_SIZE = 100;

/** Page and page size with the spec's defaults (1, 50) and bound (100). */
export function paging(page: number, pageSize: number): { page: number; pageSize: number } {
  const violations = [];
  if (page < 0) violations.push({ field: "page", description: "must be 1 or more" });
  if (pageSize < 0 || pageSize > MAX_PAGE_SIZE) violations.push({ field: "page_size", description: `must be from 1 to ${MAX_PAGE_SIZE}` });
  if (violations.length > 0) throw apiError("INVALID_REQUEST", "invalid pagination", { violations });
  return { page: page || 1, pageSize: pageSize || 50 };
}

export function pagination(page: number, pageSize: number, totalItems: number): Pagination {
  return create(PaginationSchema, { page, pageSize, totalItems, totalPages: Math.ceil(totalItems / pageSize) });
}
