// The replication's watch on its source, once a beat (a second): the
// source's WAL position and the slot's retained WAL (read for every
// replication of the cluster at once, source-poll.ts), a throughput sample,
// and the alerts those figures call for, each raised once while its
// condition holds. While streaming, a heartbeat message when the stream has
// been silent for HEARTBEAT_IDLE_BEATS (it shows an idle replication still
// applies, end to end, and keeps lag honest; a stream that delivers needs
// none, and each heartbeat is a commit every walsender of the cluster
// decodes and the target applies). While no stream runs (paused, or waiting
// to retry a failure) it also finds the oldest transaction the target lacks
// by peeking the slot, so lag stays a measured figure. Heartbeats and peeks
// need a session in the replication's own database: it is opened for them
// and closed when they stop, so a streaming replication holds no session on
// the source but its walsender. A pipeline that has not run reads what the
// target committed first (loadCheckpoint), to measure from.
import pg from "pg";
import { ensureCheckpointTable, readCheckpoint } from "../apply/checkpoint";
import { connect } from "../connect";
import { pgTimestampToDate } from "../source/pgoutput";
import type { PipelineContext } from "./context";
import type { Figures } from "./figures";
import { pollSource, type SourceSample } from "./source-poll";

export interface WatchOptions {
  source: pg.ClientConfig;
  slot: string;
  publication: string;
  figures: Figures;
  intervalMs: number;
  /** A heartbeat goes out only when the stream has delivered no transaction for this long. */
  heartbeatIdleMs: number;
  /** True while the stream runs: emit heartbeats; false: peek for the oldest unapplied transaction instead. */
  streaming: boolean;
  /** Lag above this raises REPLICATION_LAG_EXCEEDED (0: never). */
  maxLagSeconds: () => number;
  /** Retained WAL above this, while paused, raises WalRetentionHigh. */
  walRetentionWarningBytes: number;
  /** Raises an alert (a Warning unless `severity` says otherwise: its clearing is Info). */
  alert: (type: string, message: string, details: Record<string, string>, severity?: "Info" | "Warning") => void;
}

/**
 * Beats of silence on the stream before a heartbeat (30 s at the default
 * beat). Each heartbeat is a commit that every walsender of the source
 * cluster wakes for and decodes, so N idle replications on one cluster cost
 * N²/period decodes a second: at 5 s, 100 idle replications took 0.27–0.49
 * cores of all parties against native's 0.03–0.16, at 30 s 0.19 against
 * 0.10 (docs/benchmarks.md). The
 * slot of an idle replication moves on without them (the stream confirms the
 * walsender's keepalives once caught up); what the period bounds is how long
 * an idle replication goes without a proof, through the whole path to a
 * target commit, that it still applies.
 */
const HEARTBEAT_IDLE_BEATS = 30;

// Peeking reads the slot's retained WAL from its start: after a peek that
// found nothing, wait this long (doubling up to the cap) before the next.
const PEEK_FIRST_MS = 5_000;
const PEEK_MAX_MS = 300_000;

export class SourceWatch {
  private session: DatabaseSession;
  private unsubscribe: (() => void) | undefined;
  private beating: Promise<void> | undefined;
  private stopped = false;
  private nextPeekAt = 0;
  private peekGapMs = PEEK_FIRST_MS;

  constructor(private readonly options: WatchOptions) {
    // Kept between beats that use it (a peek's backoff, heartbeats in a row), closed after two without.
    this.session = new DatabaseSession(options.source, 2 * options.intervalMs);
  }

  /** Beats at once, then every interval. */
  start(): void {
    // A new stream has delivered nothing yet: its first beat sends a heartbeat, whose arrival shows it runs.
    if (this.options.streaming) this.options.figures.receivedAt = 0;
    this.unsubscribe = pollSource(this.options.source, this.options.slot, this.options.intervalMs, (sample) => {
      // A beat still in its heartbeat or peek skips this one.
      this.beating ??= this.beat(sample).finally(() => (this.beating = undefined));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.beating;
    await this.session.close();
  }

  private async beat(sample: SourceSample): Promise<void> {
    const { figures, streaming } = this.options;
    if (this.stopped) return;
    figures.sourceLsn = sample.current;
    figures.walRetainedBytes = sample.retainedBytes;
    try {
      if (streaming && Date.now() - figures.receivedAt >= this.options.heartbeatIdleMs) {
        await this.session.query("SELECT pg_logical_emit_message(true, 'heliosdb_heartbeat', '')");
      }
      if (!streaming) await this.peekPending();
    } catch {
      // A heartbeat or peek that failed is tried again at the next beat, on a new session; the figures above stand.
    }
    try {
      figures.sample();
      this.alerts();
    } catch {
      // A beat that cannot sample or alert leaves the figures as they were; the next one tries again.
    }
  }

  private warnedRetention = false;

  private alerts(): void {
    const { figures, maxLagSeconds, walRetentionWarningBytes, alert } = this.options;
    const max = maxLagSeconds();
    const { lagSeconds, status } = figures.read(max);
    const over = max > 0 && lagSeconds > max;
    if (over && !figures.lagExceeded) {
      alert("REPLICATION_LAG_EXCEEDED", `replication lag ${lagSeconds.toFixed(1)} s exceeds ${max} s`, {
        current_lag_seconds: lagSeconds.toFixed(3),
        max_lag_seconds: String(max),
      });
    }
    if (!over && figures.lagExceeded) {
      alert("ReplicationLagRecovered", `replication lag ${lagSeconds.toFixed(1)} s is back within ${max} s`, {
        current_lag_seconds: lagSeconds.toFixed(3),
        max_lag_seconds: String(max),
      }, "Info");
    }
    figures.lagExceeded = over;
    if (status === "Paused" && figures.walRetainedBytes > walRetentionWarningBytes && !this.warnedRetention) {
      this.warnedRetention = true;
      alert("WalRetentionHigh", `the paused replication's slot retains ${figures.walRetainedBytes} bytes of WAL`, {
        retained_bytes: String(figures.walRetainedBytes),
      });
    }
  }

  // The oldest unapplied transaction cannot change while nothing is applied:
  // once found, it is not looked for again.
  private async peekPending(): Promise<void> {
    const { figures } = this.options;
    if (figures.pendingSince !== null || figures.appliedLsn === 0n || figures.sourceLsn <= figures.appliedLsn) return;
    if (Date.now() < this.nextPeekAt) return;
    const found = await this.session.use((client) => oldestPendingCommit(client, this.options.slot, this.options.publication));
    if (found) {
      figures.pendingSince = found;
      return;
    }
    this.nextPeekAt = Date.now() + this.peekGapMs;
    this.peekGapMs = Math.min(this.peekGapMs * 2, PEEK_MAX_MS);
  }
}

// A session in the replication's database, opened when a query needs it and
// closed once `lingerMs` pass without one.
class DatabaseSession {
  private client: Promise<pg.Client> | undefined;
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly lingerMs: number,
  ) {}

  async query(text: string): Promise<void> {
    await this.use((client) => client.query(text));
  }

  async use<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    clearTimeout(this.idle);
    const opened = (this.client ??= connect({ ...this.config, connectionTimeoutMillis: this.config.connectionTimeoutMillis ?? 5_000 }));
    try {
      const result = await fn(await opened);
      if (this.client === opened) {
        this.idle = setTimeout(() => void this.close(), this.lingerMs);
        this.idle.unref?.();
      }
      return result;
    } catch (error) {
      // A session that failed is not used again: the next query opens a new one.
      if (this.client === opened) await this.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.idle);
    const client = this.client;
    this.client = undefined;
    await client?.then((c) => c.end()).catch(() => undefined);
  }
}

// The source watch of a pipeline, which also raises the alerts its figures call for; started.
export function watchSource(ctx: PipelineContext, streaming: boolean): SourceWatch {
  const intervalMs = ctx.deps.heartbeatIntervalMs ?? 1000;
  const watch = new SourceWatch({
    source: ctx.spec().source.connection,
    slot: ctx.slotName,
    publication: ctx.publicationName,
    figures: ctx.figures,
    intervalMs,
    heartbeatIdleMs: ctx.deps.heartbeatIdleMs ?? HEARTBEAT_IDLE_BEATS * intervalMs,
    streaming,
    maxLagSeconds: () => ctx.spec().config.maxLagSeconds,
    walRetentionWarningBytes: ctx.deps.walRetentionWarningBytes ?? 1 << 30,
    alert: (type, message, details, severity = "Warning") => ctx.emit(type, severity, message, details),
  });
  watch.start();
  return watch;
}

// What the target has committed, for a pipeline that has not run (a paused
// replication watched after a restart): its checkpoint and totals, so that
// lag and statistics are measured while nothing streams.
export async function loadCheckpoint(ctx: PipelineContext): Promise<void> {
  const { figures } = ctx;
  if (figures.appliedLsn > 0n) return;
  try {
    const target = await connect(ctx.spec().target.connection);
    try {
      const { rowCount } = await target.query("SELECT 1 FROM pg_tables WHERE schemaname = 'heliosdb_replication' AND tablename = 'checkpoints'");
      if (!rowCount) return;
      await ensureCheckpointTable(target);
      const checkpoint = await readCheckpoint(target, ctx.spec().replicationId);
      if (!checkpoint || checkpoint.phase !== "streaming") return;
      figures.begin(checkpoint.totals);
      figures.committedAt(checkpoint.lsn, checkpoint.totals, checkpoint.xid ?? 0);
      figures.lastCheckpoint = { lsn: checkpoint.lsn, timestamp: checkpoint.updatedAt, transactionId: checkpoint.xid ?? 0 };
    } finally {
      await target.end().catch(() => undefined);
    }
  } catch {
    // The target is away: the figures stay as they were, and say so by their age.
  }
}

/**
 * The commit time of the oldest transaction the slot still holds for the
 * publication (pgoutput's first Begin message), or null when it holds none.
 * Peeking does not move the slot; it fails while a stream holds it.
 */
export async function oldestPendingCommit(client: pg.ClientBase, slot: string, publication: string): Promise<Date | null> {
  const { rows } = await client.query<{ data: Buffer }>(
    `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, 1, 'proto_version', '1', 'publication_names', $2) LIMIT 1`,
    [slot, pg.escapeIdentifier(publication)],
  );
  const data = rows[0]?.data;
  // Begin: 'B', the final LSN (8 bytes), the commit time (8), the xid (4).
  if (!data || data[0] !== 0x42 || data.length < 17) return null;
  return pgTimestampToDate(data.readBigInt64BE(9));
}
