// The figures a replication reports, each derived from counters the stages
// increment as they move data: nothing here estimates what it did not see.
import type { ApplyCounters } from "../apply/applier";
import type { TableCopyProgress } from "../source/snapshot";
import type { Lsn, TransactionInfo } from "../types";

export type EngineStatus = "Initializing" | "Syncing" | "Streaming" | "Paused" | "Stopped" | "Error";
export type Health = "Healthy" | "Degraded" | "Unhealthy";

export interface ObservedFigures {
  status: EngineStatus;
  health: Health;
  /** Seconds since the commit of the oldest source transaction received but not applied; 0 when caught up. */
  lagSeconds: number;
  /** Source WAL position minus applied position, in bytes. */
  lagBytes: number;
  lastCheckpoint?: { lsn: Lsn; timestamp: Date; transactionId: number };
  rowsPerSecond: number;
  bytesPerSecond: number;
  transactionsPerSecond: number;
  totalRows: number;
  totalBytes: number;
  totalTransactions: number;
  /** Raw over shipped bytes of change batches; 1 when nothing was compressed. */
  compressionRatio: number;
  conflictsDetected: number;
  conflictsResolved: number;
  /** WAL the source keeps for this replication's slot. */
  walRetainedBytes: number;
  /** Seconds spent running (snapshot and streaming), across restarts of this object. */
  uptimeSeconds: number;
  initialSync: TableCopyProgress[];
  /** When the pipeline last changed status. */
  statusSince: Date;
}

interface Sample {
  at: number;
  rows: number;
  bytes: number;
  transactions: number;
}

// Throughput is measured over this window of one-second samples.
const WINDOW_MS = 10_000;

export class Figures {
  status: EngineStatus = "Initializing";
  statusSince = new Date();
  lastCheckpoint?: ObservedFigures["lastCheckpoint"];
  appliedLsn: Lsn = 0n;
  sourceLsn: Lsn = 0n;
  walRetainedBytes = 0;
  initialSync: TableCopyProgress[] = [];
  snapshotRows = 0;
  snapshotBytes = 0;
  lagExceeded = false;
  private readonly unapplied: Date[] = [];
  private readonly samples: Sample[] = [];
  private runningSince: number | undefined;
  private ranMs = 0;

  constructor(
    private readonly counters: () => ApplyCounters,
    private readonly compressionRatio: () => number,
  ) {}

  setStatus(status: EngineStatus): void {
    const running = status === "Syncing" || status === "Streaming";
    if (running && this.runningSince === undefined) this.runningSince = Date.now();
    if (!running && this.runningSince !== undefined) {
      this.ranMs += Date.now() - this.runningSince;
      this.runningSince = undefined;
    }
    this.status = status;
    this.statusSince = new Date();
  }

  /** A source transaction's begin was received: its commit time starts the lag clock. */
  received(commitTime: Date): void {
    this.unapplied.push(commitTime);
  }

  /** Transactions up to `last` are committed on the target. */
  applied(count: number, last: TransactionInfo): void {
    this.unapplied.splice(0, count);
    this.appliedLsn = last.endLsn;
    this.lastCheckpoint = { lsn: last.endLsn, timestamp: new Date(), transactionId: last.xid };
  }

  /** Forgets received but unapplied transactions (pause, stop, restart: they will be received again). */
  forgetUnapplied(): void {
    this.unapplied.length = 0;
  }

  /** Takes a throughput sample; call about once a second. */
  sample(): void {
    const c = this.counters();
    const now = Date.now();
    this.samples.push({ at: now, rows: c.rows + this.snapshotRows, bytes: c.bytes + this.snapshotBytes, transactions: c.transactions });
    while (this.samples.length > 2 && this.samples[0]!.at < now - WINDOW_MS) this.samples.shift();
  }

  read(maxLagSeconds: number): ObservedFigures {
    const c = this.counters();
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = first && last && last.at > first.at ? (last.at - first.at) / 1000 : 0;
    const rate = (key: "rows" | "bytes" | "transactions") => (seconds > 0 ? (last![key] - first![key]) / seconds : 0);
    const oldest = this.unapplied[0];
    const lagSeconds = oldest ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : 0;
    const lagBytes = this.sourceLsn > this.appliedLsn && this.appliedLsn > 0n ? Number(this.sourceLsn - this.appliedLsn) : 0;
    const unhealthy = this.status === "Error";
    const degraded = (maxLagSeconds > 0 && lagSeconds > maxLagSeconds) || c.conflictsDetected > c.conflictsResolved;
    return {
      status: this.status,
      health: unhealthy ? "Unhealthy" : degraded ? "Degraded" : "Healthy",
      lagSeconds,
      lagBytes,
      ...(this.lastCheckpoint ? { lastCheckpoint: this.lastCheckpoint } : {}),
      rowsPerSecond: rate("rows"),
      bytesPerSecond: rate("bytes"),
      transactionsPerSecond: rate("transactions"),
      totalRows: c.rows + this.snapshotRows,
      totalBytes: c.bytes + this.snapshotBytes,
      totalTransactions: c.transactions,
      compressionRatio: this.compressionRatio(),
      conflictsDetected: c.conflictsDetected,
      conflictsResolved: c.conflictsResolved,
      walRetainedBytes: this.walRetainedBytes,
      uptimeSeconds: Math.floor((this.ranMs + (this.runningSince ? Date.now() - this.runningSince : 0)) / 1000),
      initialSync: this.initialSync,
      statusSince: this.statusSince,
    };
  }
}
