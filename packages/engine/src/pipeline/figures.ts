// The figures a replication reports, each derived from counters the stages
// increment as they move data: nothing here estimates what it did not see.
import type { ApplyCounters } from "../apply/applier";
import { NO_TOTALS, type Totals } from "../apply/checkpoint";
import type { BatchCodecStats } from "../codec/codec";
import type { Side } from "../failure";
import type { TableCopyProgress } from "../source/snapshot";
import type { Lsn, TransactionInfo } from "../types";
import { DrainWaiters } from "./drain";

export type EngineStatus = "Initializing" | "Syncing" | "Streaming" | "Paused" | "Stopped" | "Error";
export type Health = "Healthy" | "Degraded" | "Unhealthy";

export interface ObservedFigures {
  status: EngineStatus;
  health: Health;
  /**
   * Seconds since the commit of the oldest source transaction not applied;
   * 0 when caught up. While no stream runs (paused, failed) the slot is
   * peeked for that transaction.
   */
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
  /** Seconds spent running (snapshot and streaming) since the replication was created (with fractions). */
  uptimeSeconds: number;
  initialSync: TableCopyProgress[];
  /** When the pipeline last changed status. */
  statusSince: Date;
  /** While a failure waits for its retry: what failed, and when the next attempt runs. */
  retry?: RetryState;
}

export interface RetryState {
  /** Attempts that failed since the replication last ran. */
  attempts: number;
  nextAttemptAt: Date;
  side?: Side;
  errorCode: string;
  message: string;
}

/** What the control plane remembers of a replication that this object did not see. */
export interface History {
  /** The status it was last observed in (the "from" of the first status change). */
  status?: EngineStatus;
  /** Seconds it ran before this object existed. */
  uptimeSeconds?: number;
}

interface Sample {
  at: number;
  rows: number;
  bytes: number;
  transactions: number;
}

// The statuses in which nothing is applied, and how a drain that ends with one says it.
const HALTED: Partial<Record<EngineStatus, string>> = {
  Paused: "was paused",
  Stopped: "was stopped",
  Error: "failed (its ReplicationError event says why)",
};

// Throughput is measured over this window of one-second samples.
const WINDOW_MS = 10_000;

export class Figures {
  status: EngineStatus;
  statusSince = new Date();
  lastCheckpoint?: ObservedFigures["lastCheckpoint"];
  appliedLsn: Lsn = 0n;
  sourceLsn: Lsn = 0n;
  walRetainedBytes = 0;
  initialSync: TableCopyProgress[] = [];
  snapshotRows = 0;
  snapshotBytes = 0;
  lagExceeded = false;
  /** Lifetime totals committed before the current run (read from the checkpoint). */
  base: Totals = NO_TOTALS;
  /** The totals as last committed on the target: a run that ends falls back to them. */
  committed: Totals = NO_TOTALS;
  /** When the stream last delivered a transaction (ms since the epoch; 0: none yet): the watch's heartbeats wait for silence. */
  receivedAt = 0;
  /** The commit time of the oldest unapplied transaction while no stream runs; null when there is none. */
  pendingSince: Date | null = null;
  retry: RetryState | undefined;
  /** Waits for an applied position (drainTo): told of every position committed and of every halt. */
  readonly drains = new DrainWaiters();
  private readonly unapplied: Date[] = [];
  private readonly samples: Sample[] = [];
  private runningSince: number | undefined;
  private ranMs: number;

  constructor(
    private readonly counters: () => ApplyCounters,
    private readonly codec: () => BatchCodecStats | undefined,
    history: History = {},
  ) {
    this.status = history.status ?? "Initializing";
    this.ranMs = (history.uptimeSeconds ?? 0) * 1000;
  }

  setStatus(status: EngineStatus): void {
    const running = status === "Syncing" || status === "Streaming";
    if (running && this.runningSince === undefined) this.runningSince = Date.now();
    if (!running && this.runningSince !== undefined) {
      this.ranMs += Date.now() - this.runningSince;
      this.runningSince = undefined;
    }
    // A rate measured while running says nothing about a replication that stopped.
    if (!running) this.samples.length = 0;
    this.status = status;
    this.statusSince = new Date();
    if (status in HALTED) this.drains.halted(HALTED[status]!);
  }

  /**
   * Starts counting from what the target has committed so far: at the start
   * of a run (from the checkpoint), or when a run ends (what it committed;
   * the caller drops the run's counters).
   */
  begin(base: Totals = this.committed): void {
    this.base = base;
    this.committed = base;
    this.snapshotRows = 0;
    this.snapshotBytes = 0;
    this.pendingSince = null;
    this.unapplied.length = 0;
  }

  /** A source transaction's begin was received: its commit time starts the lag clock. */
  received(commitTime: Date): void {
    this.unapplied.push(commitTime);
    this.receivedAt = Date.now();
  }

  /** Transactions up to `last` are committed on the target. */
  applied(count: number, last: TransactionInfo): void {
    this.unapplied.splice(0, count);
    this.committedAt(last.endLsn, this.totals(), last.xid);
  }

  /** The target committed everything up to `lsn`, and these totals with it. */
  committedAt(lsn: Lsn, totals: Totals, transactionId = 0): void {
    this.appliedLsn = lsn;
    this.lastCheckpoint = { lsn, timestamp: new Date(), transactionId };
    this.committed = totals;
    this.drains.reached(lsn);
  }

  /** Forgets received but unapplied transactions (pause, stop, restart: they will be received again). */
  forgetUnapplied(): void {
    this.unapplied.length = 0;
  }

  /** The lifetime totals as they stand, committed or not: what the checkpoint held, plus this run's (written with the next checkpoint; throughput is sampled from them). */
  totals(): Totals {
    const c = this.counters();
    const codec = this.codec();
    const b = this.base;
    return {
      rows: b.rows + c.rows + this.snapshotRows,
      bytes: b.bytes + c.bytes + this.snapshotBytes,
      transactions: b.transactions + c.transactions,
      conflictsDetected: b.conflictsDetected + c.conflictsDetected,
      conflictsResolved: b.conflictsResolved + c.conflictsResolved,
      rawBatchBytes: b.rawBatchBytes + (codec?.rawBytes ?? 0),
      shippedBatchBytes: b.shippedBatchBytes + (codec?.shippedBytes ?? 0),
    };
  }

  /** Takes a throughput sample; call about once a second. */
  sample(): void {
    if (this.runningSince === undefined) return;
    const t = this.totals();
    const now = Date.now();
    this.samples.push({ at: now, rows: t.rows, bytes: t.bytes, transactions: t.transactions });
    while (this.samples.length > 2 && this.samples[0]!.at < now - WINDOW_MS) this.samples.shift();
  }

  read(maxLagSeconds: number): ObservedFigures {
    // The totals the target has committed: rows of a batch still applying are
    // not replicated yet (a failure rolls them back), so the totals never fall.
    const t = this.committed;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = first && last && last.at > first.at ? (last.at - first.at) / 1000 : 0;
    const rate = (key: "rows" | "bytes" | "transactions") => (seconds > 0 ? (last![key] - first![key]) / seconds : 0);
    const oldest = this.unapplied[0] ?? this.pendingSince;
    const lagSeconds = oldest ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : 0;
    const lagBytes = this.sourceLsn > this.appliedLsn && this.appliedLsn > 0n ? Number(this.sourceLsn - this.appliedLsn) : 0;
    const unhealthy = this.status === "Error";
    // A conflict left unresolved in this run (an update that found no row to complete).
    const run = this.counters();
    const degraded = (maxLagSeconds > 0 && lagSeconds > maxLagSeconds) || run.conflictsDetected > run.conflictsResolved;
    return {
      status: this.status,
      health: unhealthy ? "Unhealthy" : degraded ? "Degraded" : "Healthy",
      lagSeconds,
      lagBytes,
      ...(this.lastCheckpoint ? { lastCheckpoint: this.lastCheckpoint } : {}),
      rowsPerSecond: rate("rows"),
      bytesPerSecond: rate("bytes"),
      transactionsPerSecond: rate("transactions"),
      totalRows: t.rows,
      totalBytes: t.bytes,
      totalTransactions: t.transactions,
      compressionRatio: t.shippedBatchBytes === 0 ? 1 : t.rawBatchBytes / t.shippedBatchBytes,
      conflictsDetected: t.conflictsDetected,
      conflictsResolved: t.conflictsResolved,
      walRetainedBytes: this.walRetainedBytes,
      // Fractional: a caller that hands it on as history (many short runs) must not lose the parts of a second.
      uptimeSeconds: (this.ranMs + (this.runningSince ? Date.now() - this.runningSince : 0)) / 1000,
      initialSync: this.initialSync,
      statusSince: this.statusSince,
      ...(this.retry ? { retry: this.retry } : {}),
    };
  }
}
