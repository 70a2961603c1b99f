// One replication's data path, wired: source (snapshot, then logical
// decoding) → transform → codec → apply → checkpoint, with the controls the
// API drives (start, pause, stop, cleanup), the figures it reports, and
// recovery: a failure that can pass (a database gone, a connection lost) is
// retried with backoff until the replication streams again.
import { CompressionConfig_CompressionLevel as Level, QoSTier, type ReplicationConfig } from "@heliosdb/replication-proto";
import pg from "pg";
import { planAggregates, installAggregate } from "./apply/aggregate";
import { Applier, type Conflict } from "./apply/applier";
import { connect } from "./connect";
import { deleteCheckpoint, ensureCheckpointTable, NO_TOTALS, readCheckpoint } from "./apply/checkpoint";
import { markTablesToSync } from "./apply/table-syncs";
import { dropCreatedObjects } from "./apply/created-objects";
import { ensureTargetTables } from "./apply/target-schema";
import { BatchCodec } from "./codec/codec";
import { Backoff, errorCode, isRetryable, onSide, sideOf, sqlStateOf } from "./failure";
import { Batcher } from "./pipeline/batcher";
import type { DrainOptions } from "./pipeline/drain";
import type { EngineDeps, EngineEvent, ReplicationSpec, StartOptions } from "./pipeline/spec";
import { Figures, type EngineStatus, type ObservedFigures } from "./pipeline/figures";
import { initialSync, syncChangedTables, type CopyContext } from "./pipeline/initial-sync";
import { qosSettings } from "./pipeline/qos";
import { disableSynchronous, enableSynchronous } from "./pipeline/synchronous";
import { evolveRelation, TextTransferNeeded } from "./pipeline/schema-evolution";
import { SourceWatch } from "./pipeline/watch";
import { prepare, targetTables, type Setup } from "./pipeline/setup";
import { binaryIneligibleColumns } from "./source/binary-transfer";
import { dropPublication, type PublicationChange } from "./source/publication";
import { dropSlot } from "./source/slot";
import { ReplicationConnection, ReplicationError } from "./source/replication-connection";
import { formatLsn, parseLsn, type Lsn, type Relation } from "./types";

export { SchemaChangeError } from "./pipeline/schema-evolution";
export type { EngineDeps, EngineEvent, ReplicationSpec, StartOptions } from "./pipeline/spec";

const LEVELS: Record<Level, "low" | "medium" | "high"> = { [Level.LOW]: "low", [Level.MEDIUM]: "medium", [Level.HIGH]: "high" };

export class ReplicationPipeline {
  readonly slotName: string;
  readonly publicationName: string;
  private readonly figures: Figures;
  private applier?: Applier;
  private codec?: BatchCodec;
  private setup?: Setup;
  private stream?: ReplicationConnection;
  private batcher?: Batcher;
  private target?: pg.Client;
  private watch?: SourceWatch;
  private running?: Promise<void>;
  private streaming?: { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> };
  private stopping = false;
  // Aborts a run in progress (a copy, a wait for the slot) when the pipeline halts.
  private abort = new AbortController();
  // Bumped by every halt: an attempt that started before it must not go on.
  private epoch = 0;
  private readonly backoff: Backoff;
  private retryTimer?: NodeJS.Timeout;
  // Whether the current attempt's stream has delivered a message.
  private flowing = false;
  // Tables copied under a snapshot of their own while the slot lived: their changes committed before it are skipped.
  private skipBefore = new Map<string, Lsn>();

  constructor(
    private spec: ReplicationSpec,
    private readonly deps: EngineDeps,
  ) {
    const name = `heliosdb_${spec.replicationId.replace(/[^a-zA-Z0-9]/g, "").toLowerCase()}`.slice(0, 63);
    this.slotName = name;
    this.publicationName = name;
    this.backoff = new Backoff(deps.retry);
    this.figures = new Figures(
      () => this.applier?.counters ?? { rows: 0, bytes: 0, transactions: 0, conflictsDetected: 0, conflictsResolved: 0 },
      () => this.codec?.stats,
      deps.history,
    );
  }

  get status(): EngineStatus {
    return this.figures.status;
  }

  /** The source position up to which the target has committed every transaction (0 before anything is applied). */
  get appliedLsn(): Lsn {
    return this.figures.appliedLsn;
  }

  /**
   * Resolves once the target has committed everything up to `lsn` (a fence's
   * final LSN), with the applied position; rejects with a DrainError if the
   * pipeline is not running, or pauses, stops or fails first, at
   * `timeoutMs`, or on `signal` (pipeline/drain.ts).
   */
  drainTo(lsn: Lsn, options: DrainOptions = {}): Promise<Lsn> {
    const halted = this.running ? undefined : `is not running (status ${this.status})`;
    return this.figures.drains.wait(lsn, this.figures.appliedLsn, halted, options);
  }

  /** The replication's observed figures. */
  read(): ObservedFigures {
    return this.figures.read(this.spec.config.maxLagSeconds);
  }

  /**
   * Validates the replication against the source and brings its publication
   * in line; then copies and streams in the background. Rejects (and
   * changes nothing) when the replication cannot run as configured; a
   * failure that can pass (a database not answering) is retried instead.
   */
  async start(options: StartOptions = {}): Promise<void> {
    if (this.running || this.retryTimer) throw new Error(`replication is already ${this.status}`);
    this.backoff.reset();
    this.figures.retry = undefined;
    // A retry resumes from the checkpoint, whatever this start asked for.
    this.retryOptions = options.initialSyncParallelism ? { initialSyncParallelism: options.initialSyncParallelism } : {};
    try {
      await this.attempt(options);
    } catch (e) {
      if (!isRetryable(e)) throw e;
      await this.fail(e, false);
    }
  }

  private retryOptions: StartOptions = {};

  /** Resolves once the change stream runs (after any initial sync); rejects if the replication fails first. */
  whenStreaming(): Promise<void> {
    return this.streaming?.promise ?? Promise.reject(new Error("the replication was not started"));
  }

  /**
   * Stops reading changes; the slot keeps the source's WAL so that start()
   * resumes without loss. Unless `watch` is false, the paused slot stays
   * watched (one source session: retained WAL, lag) until start() or stop():
   * a caller that drops this object passes false.
   */
  async pause(options: { watch?: boolean } = {}): Promise<void> {
    await this.halt();
    this.setStatus("Paused");
    if (options.watch === false) return;
    await this.loadCheckpoint();
    this.startWatch(false);
  }

  /** Stops for good: drops the slot and publication, keeps the target's data. */
  async stop(): Promise<ObservedFigures> {
    await this.halt();
    const source = await onSide("source", connect(this.spec.source.connection));
    try {
      await dropSlot(source, this.slotName);
      await dropPublication(source, this.publicationName);
    } finally {
      await source.end();
    }
    this.setStatus("Stopped");
    return this.read();
  }

  /**
   * Drops what the replication created on the target (tables, roll-ups, a
   * schema), and its checkpoint (DELETE with cleanup_target). Tables that
   * were there before it stay, with the rows it wrote.
   */
  async cleanup(): Promise<void> {
    const target = await onSide("target", connect(this.spec.target.connection));
    try {
      await ensureCheckpointTable(target);
      await dropCreatedObjects(target, this.spec.replicationId);
      await deleteCheckpoint(target, this.spec.replicationId);
    } finally {
      await target.end();
    }
  }

  /** Applies a new configuration (QoS tier, lag threshold, priority) to the running pipeline. */
  async reconfigure(config: ReplicationConfig): Promise<void> {
    this.spec = { ...this.spec, config };
    if (this.running) await this.syncTier();
  }

  // One attempt to run: validate, bring the publication in line, then copy
  // and stream in the background. Rejects when it cannot begin.
  private async attempt(options: StartOptions): Promise<void> {
    const epoch = ++this.epoch;
    await this.stopWatch();
    this.stopping = false;
    this.abort = new AbortController();
    this.streaming = deferred();
    this.flowing = false;
    const source = await onSide("source", connect(this.spec.source.connection));
    try {
      this.setup = await onSide("source", () =>
        prepare(source, { slot: this.slotName, publication: this.publicationName }, this.spec.source.schema, this.spec.tenantId, this.spec.config,
          { keys: this.deps.keys, ...(this.deps.vault ? { vault: this.deps.vault } : {}) }, (change) => this.recordTablesToSync(change)),
      );
    } finally {
      await source.end().catch(() => undefined);
    }
    // A pause, stop or newer attempt came while this one was validating.
    if (epoch !== this.epoch) return;
    this.setStatus("Initializing");
    for (const warning of this.setup.warnings) this.emit("ConfigurationWarning", "Warning", warning, {});
    this.running = this.run(options).catch((e) => this.fail(e, true));
  }

  // Before a publication change commits: the tables it adds or changes are
  // marked on the target, so that they are copied again even if the process
  // dies right after the change.
  private async recordTablesToSync(change: PublicationChange): Promise<void> {
    if (change.resync.length === 0) return;
    const target = await onSide("target", connect(this.spec.target.connection));
    try {
      await onSide("target", async () => {
        await ensureCheckpointTable(target);
        await markTablesToSync(target, this.spec.replicationId, change.resync.map((t) => t.table));
      });
    } finally {
      await target.end().catch(() => undefined);
    }
  }

  private async run(options: StartOptions): Promise<void> {
    const setup = this.setup!;
    const target = (this.target = await onSide("target", connect(this.spec.target.connection)));
    const tables = targetTables(setup.tables, setup.plan, this.spec.target.schema);
    const checkpoint = await onSide("target", async () => {
      await ensureCheckpointTable(target);
      await ensureTargetTables(target, tables, this.spec.replicationId);
      // Roll-ups are installed before the copy, whose COPY statements then fill them.
      for (const aggregate of planAggregates(this.spec.config.transforms, tables)[0]) await installAggregate(target, aggregate, this.spec.replicationId);
      return readCheckpoint(target, this.spec.replicationId);
    });
    this.figures.begin(checkpoint?.totals ?? NO_TOTALS);
    this.codec = this.makeCodec(await this.deps.keys.key(this.spec.tenantId, "batch"));
    this.applier = new Applier(target, this.spec.replicationId, this.spec.target.schema, (c) => this.conflict(c), () => this.figures.totals());
    this.stream = await onSide("source", this.openStream());
    const from = options.fromCheckpoint ?? "auto";
    const resumable = checkpoint?.phase === "streaming" && (await this.slotExists());
    let startLsn: Lsn;
    if (from === "resync" || (from === "auto" && !resumable)) {
      this.setStatus("Syncing");
      if (await this.slotExists()) await onSide("source", this.stream.dropSlot(this.slotName));
      const sync = () => initialSync(this.copyContext(options), this.stream!, this.slotName, tables);
      startLsn = this.deps.pool ? await this.deps.pool.run(this.spec.config.priority, sync) : await sync();
      this.skipBefore = new Map();
    } else {
      startLsn = from === "auto" ? checkpoint!.lsn : parseLsn(from);
      if (checkpoint) {
        this.figures.committedAt(checkpoint.lsn, checkpoint.totals, checkpoint.xid ?? 0);
        this.figures.lastCheckpoint = { lsn: checkpoint.lsn, timestamp: checkpoint.updatedAt, transactionId: checkpoint.xid ?? 0 };
      }
      this.skipBefore = await syncChangedTables(this.copyContext(options), checkpoint?.lsn ?? startLsn, {
        copying: () => this.setStatus("Syncing"),
        run: (copy) => (this.deps.pool ? this.deps.pool.run(this.spec.config.priority, copy) : copy()),
        synced: (tables, lsn) =>
          this.emit("TablesSynced", "Info", `copied ${tables.join(", ")} under a snapshot at ${formatLsn(lsn)}`, { tables: tables.join(","), sync_lsn: formatLsn(lsn) }),
      });
    }
    this.abort.signal.throwIfAborted();
    this.binary = await this.binaryTransferPossible(setup.published.map((p) => p.table));
    this.startWatch(true);
    this.setStatus("Streaming");
    this.batcher = this.makeBatcher();
    const streamed = this.streamFrom(startLsn);
    await this.syncTier();
    await streamed;
  }

  private copyContext(options: StartOptions): CopyContext {
    return {
      replicationId: this.spec.replicationId,
      source: this.spec.source.connection,
      targetConfig: this.spec.target.connection,
      target: this.target!,
      targetSchema: this.spec.target.schema,
      setup: this.setup!,
      figures: this.figures,
      parallelism: options.initialSyncParallelism ?? 4,
      signal: this.abort.signal,
      emit: (type, message, details) => this.emit(type, "Info", message, details),
      ...(this.deps.snapshotRangePages ? { rangePages: this.deps.snapshotRangePages } : {}),
    };
  }

  // Source commits wait for this replication only while it streams in the Synchronous tier.
  private async syncTier(): Promise<void> {
    const wanted = this.spec.config.qosTier === QoSTier.SYNCHRONOUS && !this.stopping && this.status === "Streaming";
    if (wanted === this.synchronous) return;
    const source = await onSide("source", connect(this.spec.source.connection));
    try {
      if (wanted) await enableSynchronous(source, this.slotName);
      else await disableSynchronous(source, this.slotName);
      this.synchronous = wanted;
    } finally {
      await source.end();
    }
  }

  private synchronous = false;

  // After a crash the old walsender may hold the slot for a moment: wait for it.
  private async streamFrom(startLsn: Lsn): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const options = {
          slot: this.slotName,
          publication: this.publicationName,
          startLsn,
          messages: true,
          binary: this.binary,
          caughtUp: () => this.batcher?.caughtUp === true,
        };
        await onSide("source", this.stream!.start(options, (message) => {
          // The first message (a heartbeat at the latest) shows the stream runs.
          if (!this.flowing) this.streamRuns();
          return this.batcher!.onMessage(message);
        }));
        return;
      } catch (e) {
        if (e instanceof TextTransferNeeded && !this.abort.signal.aborted) {
          startLsn = await this.restartInText(startLsn);
          continue;
        }
        const busy = e instanceof ReplicationError && e.sqlState === "55006";
        if (!busy || attempt >= 150 || this.abort.signal.aborted) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  // The stream delivers again: a failure it recovered from is over.
  private streamRuns(): void {
    this.flowing = true;
    this.streaming?.resolve();
    if (this.backoff.attempts > 0) {
      this.emit("ReplicationRecovered", "Info", `streaming again after ${this.backoff.attempts} failed attempt(s)`, {
        retry_count: String(this.backoff.attempts),
      });
    }
    this.backoff.reset();
    this.figures.retry = undefined;
  }

  // Drops what binary transfer gathered but did not commit; the stream
  // resends it, in text, from the last acknowledged position.
  private async restartInText(startLsn: Lsn): Promise<Lsn> {
    this.binary = false;
    this.batcher!.discard();
    await this.batcher!.drain();
    await this.applier!.rollback();
    this.figures.forgetUnapplied();
    this.batcher = this.makeBatcher();
    const acknowledged = this.stream!.lastAcknowledged;
    // A fresh walsender session: the stream's options are fixed at START_REPLICATION.
    await this.stream!.close();
    this.stream = await onSide("source", this.openStream());
    return acknowledged > startLsn ? acknowledged : startLsn;
  }

  private openStream(): Promise<ReplicationConnection> {
    return ReplicationConnection.connect({ ...this.spec.source.connection, application_name: this.slotName });
  }

  private binary = false;

  /** How the stream carries values: "binary" (binary transfer) or "text". */
  get transferFormat(): "binary" | "text" {
    return this.binary ? "binary" : "text";
  }

  // Binary transfer when nothing reads text values (transforms, the batch
  // codec) and every column's type allows it. `source`: a session to ask on, else one is opened.
  private async binaryTransferPossible(tables: Relation[], source?: pg.ClientBase): Promise<boolean> {
    if (this.deps.binaryTransfer === false || this.codec) return false;
    if (tables.some((t) => this.setup!.plan.forRelation(t).transformed)) return false;
    const allBinary = async (client: pg.ClientBase) =>
      (await binaryIneligibleColumns(client, this.target!, this.spec.target.schema, tables)).length === 0;
    if (source) return allBinary(source);
    const client = await onSide("source", connect(this.spec.source.connection));
    try {
      return await allBinary(client);
    } finally {
      await client.end();
    }
  }

  private makeBatcher(): Batcher {
    const plan = this.setup!.plan;
    return new Batcher({
      applier: this.applier!,
      ...(this.codec ? { codec: this.codec } : {}),
      ...(this.deps.transport ? { transport: this.deps.transport } : {}),
      settings: () => qosSettings(this.spec.config.qosTier),
      figures: this.figures,
      transformFor: (relation) => {
        const p = plan.forRelation(relation);
        return p.transformed ? (row) => p.transform(row) : undefined;
      },
      onRelation: (relation) => this.evolve(relation),
      carries: (oid) => {
        const published = this.setup!.published.find((p) => p.table.oid === oid);
        return published ? (this.skipBefore.get(published.table.table) ?? true) : false;
      },
      beforeApply: () => plan.flush(),
      acknowledge: (lsn) => this.stream?.acknowledge(lsn),
      onError: (e) => void this.fail(e, false),
    });
  }

  // A relation message: new source columns are added on the target; a
  // changed type or key is a schema change the replication cannot follow.
  private async evolve(relation: Relation): Promise<Relation> {
    const source = await onSide("source", connect(this.spec.source.connection));
    try {
      return await evolveRelation(
        {
          source,
          target: this.target!,
          targetSchema: this.spec.target.schema,
          setup: this.setup!,
          binary: this.binary,
          binaryStillPossible: (described) => this.binaryTransferPossible([described], source),
          emit: (type, message, details) => this.emit(type, "Info", message, details),
        },
        relation,
      );
    } finally {
      await source.end();
    }
  }

  // The source watch (pipeline/watch.ts), which also raises the alerts its figures call for.
  private startWatch(streaming: boolean): void {
    this.watch = new SourceWatch({
      source: this.spec.source.connection,
      slot: this.slotName,
      publication: this.publicationName,
      figures: this.figures,
      intervalMs: this.deps.heartbeatIntervalMs ?? 1000,
      streaming,
      maxLagSeconds: () => this.spec.config.maxLagSeconds,
      walRetentionWarningBytes: this.deps.walRetentionWarningBytes ?? 1 << 30,
      alert: (type, message, details, severity = "Warning") => this.emit(type, severity, message, details),
    });
    this.watch.start();
  }

  private async stopWatch(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    await watch?.stop();
  }

  // What the target has committed, for a pipeline that has not run (a paused
  // replication watched after a restart): its checkpoint and totals, so that
  // lag and statistics are measured while nothing streams.
  private async loadCheckpoint(): Promise<void> {
    if (this.figures.appliedLsn > 0n) return;
    try {
      const target = await connect(this.spec.target.connection);
      try {
        const { rowCount } = await target.query("SELECT 1 FROM pg_tables WHERE schemaname = 'heliosdb_replication' AND tablename = 'checkpoints'");
        if (!rowCount) return;
        await ensureCheckpointTable(target);
        const checkpoint = await readCheckpoint(target, this.spec.replicationId);
        if (!checkpoint || checkpoint.phase !== "streaming") return;
        this.figures.begin(checkpoint.totals);
        this.figures.committedAt(checkpoint.lsn, checkpoint.totals, checkpoint.xid ?? 0);
        this.figures.lastCheckpoint = { lsn: checkpoint.lsn, timestamp: checkpoint.updatedAt, transactionId: checkpoint.xid ?? 0 };
      } finally {
        await target.end().catch(() => undefined);
      }
    } catch {
      // The target is away: the figures stay as they were, and say so by their age.
    }
  }

  // Ends the stream and the target session; what was not applied is streamed
  // again later. From inside the run itself (a failure) it must not wait for
  // the run to end: that would wait for itself.
  private async halt(fromRun = false): Promise<void> {
    this.epoch++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stopping = true;
    this.abort.abort(new Error("the replication was halted"));
    // First of all: a replication that no longer streams must not hold the source's commits.
    await this.syncTier().catch((e) => this.emit("ReplicationError", "Critical", `could not clear synchronous_standby_names: ${String(e)}`, {}));
    await this.stopWatch();
    this.batcher?.discard();
    const closed = this.stream;
    await closed?.close().catch(() => undefined);
    // A batch still applying finishes (or fails) before the session is rolled back and closed.
    await this.batcher?.drain();
    if (!fromRun) await this.running?.catch(() => undefined);
    // A run halted while it was opening its stream holds it only now: closed too, or its walsender stays and keeps the slot active.
    if (this.stream && this.stream !== closed) await this.stream.close().catch(() => undefined);
    await this.applier?.rollback();
    await this.target?.end().catch(() => undefined);
    // The run's counters end here: the figures keep what it committed.
    this.applier = undefined;
    this.codec = undefined;
    this.figures.begin();
    this.stream = undefined;
    this.target = undefined;
    this.running = undefined;
  }

  // A failure: reported, the run halted, and — unless only a person can mend
  // it — a new attempt scheduled after a backoff.
  private async fail(error: unknown, fromRun: boolean): Promise<void> {
    if (this.stopping) return;
    this.streaming?.reject(error);
    this.streaming?.promise.catch(() => undefined);
    this.streaming = undefined;
    const message = error instanceof Error ? error.message : String(error);
    const retryable = isRetryable(error);
    const side = sideOf(error);
    const delay = retryable ? this.backoff.next() : 0;
    const details: Record<string, string> = {
      error: error instanceof Error ? error.name : "Error",
      error_code: errorCode(error),
      side: side ?? "engine",
      retryable: String(retryable),
    };
    const sqlState = sqlStateOf(error);
    if (sqlState) details.sqlstate = sqlState;
    if (retryable) Object.assign(details, { retry_count: String(this.backoff.attempts), retry_in_seconds: (delay / 1000).toFixed(1) });
    const text = retryable ? `${side ?? "the engine"} failed: ${message}; retry ${this.backoff.attempts} in ${details.retry_in_seconds} s` : message;
    this.emit("ReplicationError", "Error", text, details);
    await this.halt(fromRun);
    this.setStatus("Error");
    if (!retryable) return;
    this.figures.retry = { attempts: this.backoff.attempts, nextAttemptAt: new Date(Date.now() + delay), errorCode: details.error_code!, message, ...(side ? { side } : {}) };
    // Meanwhile the slot stays watched: lag and retained WAL keep being measured.
    await this.loadCheckpoint();
    this.startWatch(false);
    const epoch = this.epoch;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (epoch !== this.epoch) return;
      this.attempt(this.retryOptions).catch((e) => (isRetryable(e) ? this.fail(e, false) : this.failed(e)));
    }, delay);
  }

  // An attempt found what only a person can mend (e.g. a configuration the source now refuses).
  private failed(error: unknown): void {
    this.figures.retry = undefined;
    const message = error instanceof Error ? error.message : String(error);
    const sqlState = sqlStateOf(error);
    this.emit("ReplicationError", "Error", message, {
      error: error instanceof Error ? error.name : "Error",
      error_code: errorCode(error),
      retryable: "false",
      ...(sqlState ? { sqlstate: sqlState } : {}),
    });
  }

  private conflict(c: Conflict): void {
    this.emit(c.resolved ? "ConflictResolved" : "ConflictDetected", "Warning", `${c.kind.replace(/_/g, " ")} in ${c.table}`, {
      table: c.table,
      key: JSON.stringify(c.key),
      resolution: c.resolved ? "source_wins" : "unresolved",
    });
  }

  private makeCodec(key: Buffer): BatchCodec | undefined {
    const { compression, encryption } = this.spec.config;
    if (!compression?.enabled && !encryption?.enabled) return undefined;
    return new BatchCodec({
      replicationId: this.spec.replicationId,
      compression: { enabled: !!compression?.enabled, level: LEVELS[compression?.level ?? Level.LOW] },
      encryption: { enabled: !!encryption?.enabled, ...(encryption?.enabled ? { key } : {}) },
    });
  }

  private async slotExists(): Promise<boolean> {
    const client = await onSide("source", connect(this.spec.source.connection));
    try {
      const { rowCount } = await onSide("source", client.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [this.slotName]));
      return rowCount === 1;
    } finally {
      await client.end();
    }
  }

  private setStatus(status: EngineStatus): void {
    if (status === this.figures.status) return;
    const from = this.figures.status;
    this.figures.setStatus(status);
    this.emit("StatusChanged", status === "Error" ? "Error" : "Info", `status ${from} → ${status}`, { from, to: status });
  }

  private emit(type: string, severity: EngineEvent["severity"], message: string, details: Record<string, string>): void {
    this.deps.onEvent?.({ replicationId: this.spec.replicationId, type, severity, message, details });
  }
}

function deferred(): { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { resolve, reject, promise };
}
