// Messages built from what the control plane stored and the engine observed.
// Every RPC on every server derives a replication's status, health and
// figures with observedState() from the stored row alone: the owner stores
// its pipeline's figures at each pass and at each status change, so GET, the
// list (and its status filter), the control responses and other servers all
// tell the same thing, with the time it was observed.
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
import type { ReplicationRow, StoredFigures } from "../store/replications";

/** A replication's state as the API shows it. */
export interface ObservedState {
  /** In the spec's spelling: Initializing … Error. */
  status: string;
  /** Healthy, Degraded, Unhealthy, or Unknown when figures that should be live are not. */
  health: string;
  figures: StoredFigures | null;
  observedAt?: Date;
}

/**
 * The one rule for a replication's state. What the operator wants decides a
 * replication that should not run (its status is the one the request set).
 * One that should run shows what its owner last observed, and its health is
 * Unknown, never Healthy, when those figures are not live: no server holds a
 * live lease on it, or they are older than `staleAfterMs` (the owner died,
 * is stuck, or has not reported since it started). store/replications.ts
 * census() counts by the same rule.
 */
export function observedState(row: ReplicationRow, staleAfterMs: number, now = Date.now()): ObservedState {
  const figures = row.figures;
  const observedAt = figures?.observedAt ? new Date(figures.observedAt) : undefined;
  let health: string;
  if (row.desired === "running") {
    const live = row.leaseLive && observedAt !== undefined && now - observedAt.getTime() <= staleAfterMs;
    health = live ? row.health : "Unknown";
  } else {
    health = row.status === "Error" ? "Unhealthy" : "Healthy";
  }
  return { status: row.status, health, figures, ...(observedAt ? { observedAt } : {}) };
}

/**
 * `message`, frozen through and through: a message answered to more than one
 * call, which then cannot change under any of them, and which each protocol
 * encodes once (transport/encoded.ts).
 */
export function shared<M extends object>(message: M): M {
  for (const value of Object.values(message)) {
    // A typed array with elements cannot be frozen; nothing answers one twice here.
    if (typeof value === "object" && value !== null && !ArrayBuffer.isView(value)) shared(value);
  }
  return Object.freeze(message);
}

/** The spec's status name ("Streaming") as the enum. */
export function statusOf(name: string): ReplicationStatus {
  return ReplicationStatus[name.toUpperCase() as keyof typeof ReplicationStatus] ?? ReplicationStatus.INITIALIZING;
}

export function checkpointOf(figures: StoredFigures | null | undefined) {
  const c = figures?.lastCheckpoint;
  if (!c) return undefined;
  return create(CheckpointSchema, { lsn: BigInt(c.lsn), timestamp: timestampFromDate(new Date(c.timestamp)), transactionId: BigInt(c.transactionId) });
}

/**
 * A replication as the API shows it. `view` picks the optional parts: the
 * create response carries the estimates, list items the summary fields.
 */
export function replicationMessage(row: ReplicationRow, state: ObservedState, view: "full" | "created" | "list" = "full"): Replication {
  const { status, health, figures: f } = state;
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
      ...(state.observedAt ? { observedAt: timestampFromDate(state.observedAt) } : {}),
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
      uptimeSeconds: BigInt(Math.floor(f?.uptimeSeconds ?? 0)),
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
function progress(f: StoredFigures): number {
  if (f.initialSync.every((t) => t.completed)) return 100;
  const sum = (key: "rowsEstimated" | "rowsCopied" | "bytesEstimated" | "bytesCopied") => f.initialSync.reduce((n, t) => n + t[key], 0);
  const rows = sum("rowsEstimated");
  const bytes = sum("bytesEstimated");
  const done = rows > 0 ? sum("rowsCopied") / rows : bytes > 0 ? sum("bytesCopied") / bytes : 0;
  return Math.min(99.9, Math.round(done * 1000) / 10);
}

export function pagination(page: number, pageSize: number, totalItems: number): Pagination {
  return create(PaginationSchema, { page, pageSize, totalItems, totalPages: Math.ceil(totalItems / pageSize) });
}
