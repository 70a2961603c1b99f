// One replication's data path, wired: source (snapshot, then logical
// decoding) → transform → codec → apply → checkpoint, with the controls the
// API drives (start, pause, stop, cleanup), the figures it reports, and
// recovery: a failure that can pass (a database gone, a connection lost) is
// retried with backoff until the replication streams again. Each part it
// wires is a file of pipeline/.
import { QoSTier, type ReplicationConfig } from "@heliosdb/replication-proto";
import { connect } from "./connect";
import { NO_TOTALS } from "./apply/checkpoint";
import { isRetryable, onSide } from "./failure";
import type { PipelineContext, Stages } from "./pipeline/context";
import type { DrainOptions } from "./pipeline/drain";
import type { EngineDeps, EngineEvent, ReplicationSpec, StartOptions } from "./pipeline/spec";
import { Figures, type EngineStatus, type ObservedFigures } from "./pipeline/figures";
import { streamingHeap } from "./pipeline/heap";
import { Recovery } from "./pipeline/recovery";
import { openStream, streamFrom } from "./pipeline/restart";
import { prepare, targetTables } from "./pipeline/setup";
import { makeApplier, makeBatcher, makeCodec } from "./pipeline/stages";
import { recordTablesToSync, startPosition } from "./pipeline/start-position";
import { SynchronousTier } from "./pipeline/synchronous";
import { cleanupTarget, prepareTarget } from "./pipeline/target";
import { binaryTransferPossible } from "./pipeline/transfer-format";
import { loadCheckpoint, watchSource, type SourceWatch } from "./pipeline/watch";
import { dropPublication } from "./source/publication";
import { dropSlot } from "./source/slot";
import type { Lsn } from "./types";

export { SchemaChangeError } from "./pipeline/schema-evolution";
export type { EngineDeps, EngineEvent, ReplicationSpec, StartOptions } from "./pipeline/spec";

export class ReplicationPipeline {
  readonly slotName: string;
  readonly publicationName: string;
  private readonly figures: Figures;
  private readonly stages: Stages = { binary: false, skipBefore: new Map() };
  private readonly ctx: PipelineContext;
  private readonly tier: SynchronousTier;
  private watch?: SourceWatch;
  private readonly recovery: Recovery;
  private running?: Promise<void>;
  private stopping = false;
  // Aborts a run in progress (a copy, a wait for the slot) when the pipeline halts.
  private abort = new AbortController();
  // Bumped by every halt: an attempt that started before it must not go on.
  private epoch = 0;

  constructor(
    private spec: ReplicationSpec,
    private readonly deps: EngineDeps,
  ) {
    streamingHeap();
    const name = `heliosdb_${spec.replicationId.replace(/[^a-zA-Z0-9]/g, "").toLowerCase()}`.slice(0, 63);
    this.slotName = name;
    this.publicationName = name;
    this.figures = new Figures(
      () => this.stages.applier?.counters ?? { rows: 0, bytes: 0, transactions: 0, conflictsDetected: 0, conflictsResolved: 0 },
      () => this.stages.codec?.stats,
      deps.history,
    );
    this.ctx = {
      slotName: name,
      publicationName: name,
      deps,
      figures: this.figures,
      stages: this.stages,
      spec: () => this.spec,
      signal: () => this.abort.signal,
      setStatus: (status) => this.setStatus(status),
      emit: (type, severity, message, details) => this.emit(type, severity, message, details),
      fail: (e) => void this.fail(e, false),
    };
    this.tier = new SynchronousTier(() => this.spec.source.connection, name);
    this.recovery = new Recovery(this.ctx);
  }

  get status(): EngineStatus {
    return this.figures.status;
  }

  /** The source position up to which the target has committed every transaction (0 before anything is applied). */
  get appliedLsn(): Lsn {
    return this.figures.appliedLsn;
  }

  /** How the stream carries values: "binary" (binary transfer) or "text". */
  get transferFormat(): "binary" | "text" {
    return this.stages.binary ? "binary" : "text";
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
    if (this.running || this.recovery.scheduled) throw new Error(`replication is already ${this.status}`);
    this.recovery.reset();
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
    return this.recovery.whenStreaming();
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
    await loadCheckpoint(this.ctx);
    this.watch = watchSource(this.ctx, false);
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
    await cleanupTarget(this.spec);
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
    this.recovery.begin();
    const source = await onSide("source", connect(this.spec.source.connection));
    try {
      this.stages.setup = await onSide("source", () =>
        prepare(source, { slot: this.slotName, publication: this.publicationName }, this.spec.source.schema, this.spec.tenantId, this.spec.config,
          { keys: this.deps.keys, ...(this.deps.vault ? { vault: this.deps.vault } : {}) }, (change) => recordTablesToSync(this.ctx, change)),
      );
    } finally {
      await source.end().catch(() => undefined);
    }
    // A pause, stop or newer attempt came while this one was validating.
    if (epoch !== this.epoch) return;
    this.setStatus("Initializing");
    for (const warning of this.stages.setup.warnings) this.emit("ConfigurationWarning", "Warning", warning, {});
    this.running = this.run(options).catch((e) => this.fail(e, true));
  }

  private async run(options: StartOptions): Promise<void> {
    const stages = this.stages;
    const setup = stages.setup!;
    const target = (stages.target = await onSide("target", connect(this.spec.target.connection)));
    const tables = targetTables(setup.tables, setup.plan, this.spec.target.schema);
    const checkpoint = await prepareTarget(this.ctx, target, tables);
    this.figures.begin(checkpoint?.totals ?? NO_TOTALS);
    stages.codec = makeCodec(await this.deps.keys.key(this.spec.tenantId, "batch"), this.spec);
    stages.applier = makeApplier(this.ctx, target);
    stages.stream = await onSide("source", openStream(this.ctx));
    const startLsn = await startPosition(this.ctx, options, checkpoint, tables);
    this.abort.signal.throwIfAborted();
    stages.binary = await binaryTransferPossible(this.ctx, setup.published.map((p) => p.table));
    this.watch = watchSource(this.ctx, true);
    this.setStatus("Streaming");
    stages.batcher = makeBatcher(this.ctx);
    const streamed = streamFrom(this.ctx, startLsn, () => this.recovery.delivered());
    await this.syncTier();
    await streamed;
  }

  // Source commits wait for this replication only while it streams in the Synchronous tier.
  private async syncTier(): Promise<void> {
    await this.tier.follow(this.spec.config.qosTier === QoSTier.SYNCHRONOUS && !this.stopping && this.status === "Streaming");
  }

  private async stopWatch(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    await watch?.stop();
  }

  // Ends the stream and the target session; what was not applied is streamed
  // again later. From inside the run itself (a failure) it must not wait for
  // the run to end: that would wait for itself.
  private async halt(fromRun = false): Promise<void> {
    const stages = this.stages;
    this.epoch++;
    this.recovery.cancel();
    this.stopping = true;
    this.abort.abort(new Error("the replication was halted"));
    // First of all: a replication that no longer streams must not hold the source's commits.
    await this.syncTier().catch((e) => this.emit("ReplicationError", "Critical", `could not clear synchronous_standby_names: ${String(e)}`, {}));
    await this.stopWatch();
    stages.batcher?.discard();
    const closed = stages.stream;
    await closed?.close().catch(() => undefined);
    // A batch still applying finishes (or fails) before the session is rolled back and closed.
    await stages.batcher?.drain();
    if (!fromRun) await this.running?.catch(() => undefined);
    // A run halted while it was opening its stream holds it only now: closed too, or its walsender stays and keeps the slot active.
    if (stages.stream && stages.stream !== closed) await stages.stream.close().catch(() => undefined);
    await stages.applier?.rollback();
    await stages.target?.end().catch(() => undefined);
    // The run's counters end here: the figures keep what it committed.
    stages.applier = undefined;
    stages.codec = undefined;
    this.figures.begin();
    stages.stream = undefined;
    stages.target = undefined;
    this.running = undefined;
  }

  // A failure: reported, the run halted, and — unless only a person can mend
  // it — a new attempt scheduled after a backoff.
  private async fail(error: unknown, fromRun: boolean): Promise<void> {
    if (this.stopping) return;
    const failure = this.recovery.failed(error);
    await this.halt(fromRun);
    this.setStatus("Error");
    if (failure.delay === undefined) return;
    this.recovery.waiting(failure);
    // Meanwhile the slot stays watched: lag and retained WAL keep being measured.
    await loadCheckpoint(this.ctx);
    this.watch = watchSource(this.ctx, false);
    const epoch = this.epoch;
    this.recovery.schedule(failure, () => {
      if (epoch !== this.epoch) return;
      this.attempt(this.retryOptions).catch((e) => (isRetryable(e) ? this.fail(e, false) : this.recovery.gaveUp(e)));
    });
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
