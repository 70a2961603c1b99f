// One replication's data path, wired: source (snapshot, then logical
// decoding) → transform → codec → apply → checkpoint, with the controls the
// API drives (start, pause, stop, cleanup) and the figures it reports.
import { CompressionConfig_CompressionLevel as Level, QoSTier, type ReplicationConfig } from "@heliosdb/replication-proto";
import pg from "pg";
import { planAggregates, installAggregate } from "./apply/aggregate";
import { Applier, type Conflict } from "./apply/applier";
import { connect } from "./connect";
import { deleteCheckpoint, ensureCheckpointTable, readCheckpoint, writeCheckpoint } from "./apply/checkpoint";
import { addMissingColumns, dropTargetTables, ensureTargetTables, truncateTargetTables, type TargetTable } from "./apply/target-schema";
import { BatchCodec, type SealedBatch } from "./codec/codec";
import { Batcher } from "./pipeline/batcher";
import { Figures, type EngineStatus, type ObservedFigures } from "./pipeline/figures";
import { qosSettings } from "./pipeline/qos";
import { disableSynchronous, enableSynchronous } from "./pipeline/synchronous";
import type { WorkerPool } from "./pipeline/worker-pool";
import { prepare, targetTables, type Setup } from "./pipeline/setup";
import { readCatalog } from "./source/catalog";
import { binaryIneligibleColumns } from "./source/binary-transfer";
import { dropPublication } from "./source/publication";
import { applyTableFilter } from "./source/table-filter";
import { ReplicationConnection, ReplicationError } from "./source/replication-connection";
import { copySnapshot } from "./source/snapshot";
import type { KeyProvider } from "./transform/keys";
import type { TokenVault } from "./transform/token-vault";
import { parseLsn, type Lsn, type Relation } from "./types";

export interface ReplicationSpec {
  replicationId: string;
  tenantId: string;
  source: { connection: pg.ClientConfig; schema: string };
  target: { connection: pg.ClientConfig; schema: string };
  config: ReplicationConfig;
}

export interface EngineEvent {
  replicationId: string;
  /** e.g. StatusChanged, ReplicationError, ConflictResolved, REPLICATION_LAG_EXCEEDED, WalRetentionHigh. */
  type: string;
  severity: "Info" | "Warning" | "Error" | "Critical";
  message: string;
  details: Record<string, string>;
}

export interface EngineDeps {
  keys: KeyProvider;
  vault?: TokenVault;
  onEvent?: (event: EngineEvent) => void;
  /** Between heartbeats on the source, which keep an idle slot moving and lag honest (default 1000). */
  heartbeatIntervalMs?: number;
  /** Retained WAL above which a paused replication warns (default 1 GiB). */
  walRetentionWarningBytes?: number;
  /** The trip of sealed batches from reader to applier; tests tamper with it. */
  transport?: (sealed: SealedBatch) => Promise<SealedBatch>;
  /** Shared by the replications of a process: initial syncs wait for a worker, by priority. */
  pool?: WorkerPool;
  /** Pages per range when the initial sync splits a large table among workers (default 16384 = 128 MB). */
  snapshotRangePages?: number;
  /** Stream values in binary format where every type allows it (default true; see source/binary-transfer.ts). */
  binaryTransfer?: boolean;
}

// Thrown while streaming in binary format when a relation gains a column
// that cannot travel in it: the stream restarts in text format.
class TextTransferNeeded extends Error {
  override name = "TextTransferNeeded";
}

export interface StartOptions {
  /**
   * "auto" (default): resume from the checkpoint, or sync from scratch;
   * "resync": copy everything again (the tables, filters or transforms
   * changed); or an LSN to stream from.
   */
  fromCheckpoint?: string;
  initialSyncParallelism?: number;
}

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
  private heartbeat?: NodeJS.Timeout;
  private running?: Promise<void>;
  private streaming?: { resolve: () => void; reject: (e: unknown) => void; promise: Promise<void> };
  private stopping = false;
  // Aborts a run in progress (a copy, a wait for the slot) when the pipeline halts.
  private abort = new AbortController();

  constructor(
    private spec: ReplicationSpec,
    private readonly deps: EngineDeps,
  ) {
    const name = `heliosdb_${spec.replicationId.replace(/[^a-zA-Z0-9]/g, "").toLowerCase()}`.slice(0, 63);
    this.slotName = name;
    this.publicationName = name;
    this.figures = new Figures(
      () => this.applier?.counters ?? { rows: 0, bytes: 0, transactions: 0, conflictsDetected: 0, conflictsResolved: 0 },
      () => this.codec?.compressionRatio ?? 1,
    );
  }

  get status(): EngineStatus {
    return this.figures.status;
  }

  /** The replication's observed figures. */
  read(): ObservedFigures {
    return this.figures.read(this.spec.config.maxLagSeconds);
  }

  /**
   * Validates the replication against the source and creates its
   * publication; then copies and streams in the background. Rejects (and
   * creates nothing) when the replication cannot run.
   */
  async start(options: StartOptions = {}): Promise<void> {
    if (this.running) throw new Error(`replication is already ${this.status}`);
    await this.stopHeartbeat();
    this.stopping = false;
    this.abort = new AbortController();
    this.streaming = deferred();
    const source = await connect(this.spec.source.connection);
    try {
      this.setup = await prepare(source, { slot: this.slotName, publication: this.publicationName }, this.spec.source.schema,
        this.spec.tenantId, this.spec.config, { keys: this.deps.keys, ...(this.deps.vault ? { vault: this.deps.vault } : {}) });
    } finally {
      await source.end();
    }
    this.setStatus("Initializing");
    for (const warning of this.setup.warnings) this.emit("ConfigurationWarning", "Warning", warning, {});
    this.running = this.run(options).catch((e) => this.fail(e, true));
  }

  /** Resolves once the change stream runs (after any initial sync); rejects if the replication fails first. */
  whenStreaming(): Promise<void> {
    return this.streaming?.promise ?? Promise.reject(new Error("the replication was not started"));
  }

  /**
   * Stops reading changes; the slot keeps the source's WAL so that start()
   * resumes without loss. Unless `watch` is false, the paused slot's retained
   * WAL stays watched (one source session) until start() or stop(): a caller
   * that drops this object passes false.
   */
  async pause(options: { watch?: boolean } = {}): Promise<void> {
    await this.halt();
    this.setStatus("Paused");
    if (options.watch !== false) this.startHeartbeat(false);
  }

  /** Stops for good: drops the slot and publication, keeps the target's data. */
  async stop(): Promise<ObservedFigures> {
    await this.halt();
    const source = await connect(this.spec.source.connection);
    try {
      await source.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [this.slotName]);
      await dropPublication(source, this.publicationName);
    } finally {
      await source.end();
    }
    this.setStatus("Stopped");
    return this.read();
  }

  /** Drops the replicated tables and the checkpoint on the target (DELETE with cleanup_target). */
  async cleanup(): Promise<void> {
    const target = await connect(this.spec.target.connection);
    try {
      await dropTargetTables(target, await this.replicatedTables());
      await ensureCheckpointTable(target);
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

  private async run(options: StartOptions): Promise<void> {
    const setup = this.setup!;
    this.target = await connect(this.spec.target.connection);
    const tables = targetTables(setup.tables, setup.plan, this.spec.target.schema);
    await ensureCheckpointTable(this.target);
    await ensureTargetTables(this.target, tables);
    // Roll-ups are installed before the copy, whose COPY statements then fill them.
    for (const aggregate of planAggregates(this.spec.config.transforms, tables)[0]) await installAggregate(this.target, aggregate);
    this.codec = this.makeCodec(await this.deps.keys.key(this.spec.tenantId, "batch"));
    this.applier = new Applier(this.target, this.spec.replicationId, this.spec.target.schema, (c) => this.conflict(c));
    this.stream = await this.openStream();
    const checkpoint = await readCheckpoint(this.target, this.spec.replicationId);
    const from = options.fromCheckpoint ?? "auto";
    let startLsn: Lsn;
    if (from !== "auto" && from !== "resync") {
      startLsn = parseLsn(from);
    } else if (from === "auto" && checkpoint?.phase === "streaming" && (await this.slotExists())) {
      startLsn = checkpoint.lsn;
      // The checkpoint the target holds is the last one, until a batch commits the next.
      this.figures.appliedLsn = checkpoint.lsn;
      this.figures.lastCheckpoint = { lsn: checkpoint.lsn, timestamp: checkpoint.updatedAt, transactionId: checkpoint.xid ?? 0 };
    } else {
      const sync = () => this.initialSync(tables, options.initialSyncParallelism ?? 4);
      startLsn = this.deps.pool ? await this.deps.pool.run(this.spec.config.priority, sync) : await sync();
    }
    this.abort.signal.throwIfAborted();
    this.binary = await this.binaryTransferPossible(setup.published.map((p) => p.table));
    this.startHeartbeat();
    this.setStatus("Streaming");
    this.batcher = this.makeBatcher();
    const streamed = this.streamFrom(startLsn);
    await this.syncTier();
    await streamed;
  }

  // Source commits wait for this replication only while it streams in the Synchronous tier.
  private async syncTier(): Promise<void> {
    const wanted = this.spec.config.qosTier === QoSTier.SYNCHRONOUS && !this.stopping && this.status === "Streaming";
    if (wanted === this.synchronous) return;
    const source = await connect(this.spec.source.connection);
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
        const options = { slot: this.slotName, publication: this.publicationName, startLsn, messages: true, binary: this.binary };
        await this.stream!.start(options, (message) => {
          // The first message (a heartbeat at the latest) shows the stream runs.
          this.streaming?.resolve();
          return this.batcher!.onMessage(message);
        });
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
    this.stream = await this.openStream();
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
    const client = await connect(this.spec.source.connection);
    try {
      return await allBinary(client);
    } finally {
      await client.end();
    }
  }

  // Copies every table under a fresh slot's snapshot; returns where the stream starts.
  private async initialSync(tables: TargetTable[], parallelism: number): Promise<Lsn> {
    this.setStatus("Syncing");
    if (await this.slotExists()) await this.stream!.dropSlot(this.slotName);
    // A copy interrupted earlier left partial tables: start them afresh.
    await truncateTargetTables(this.target!, tables);
    await writeCheckpoint(this.target!, this.spec.replicationId, { phase: "snapshot", lsn: 0n, commitTime: null, xid: null });
    const slot = await this.stream!.createSlot(this.slotName);
    const plan = this.setup!.plan;
    const progress = await copySnapshot({
      source: this.spec.source.connection,
      target: this.spec.target.connection,
      targetSchema: this.spec.target.schema,
      snapshotName: slot.snapshotName,
      tables: this.setup!.published,
      parallelism,
      signal: this.abort.signal,
      ...(this.deps.snapshotRangePages ? { rangePages: this.deps.snapshotRangePages } : {}),
      transformRow: (name) => {
        const table = this.setup!.published.find((p) => p.table.table === name)!.table;
        const relationPlan = plan.forRelation(table);
        return relationPlan.transformed ? (row) => relationPlan.transform(row) : undefined;
      },
      onProgress: (p) => {
        this.figures.initialSync = p;
        this.figures.snapshotRows = p.reduce((n, t) => n + t.rowsCopied, 0);
        this.figures.snapshotBytes = p.reduce((n, t) => n + t.bytesCopied, 0);
      },
    });
    await plan.flush();
    this.figures.initialSync = progress;
    await writeCheckpoint(this.target!, this.spec.replicationId, { phase: "streaming", lsn: slot.consistentPoint, commitTime: null, xid: null });
    this.figures.appliedLsn = slot.consistentPoint;
    this.figures.lastCheckpoint = { lsn: slot.consistentPoint, timestamp: new Date(), transactionId: 0 };
    return slot.consistentPoint;
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
      beforeApply: () => plan.flush(),
      acknowledge: (lsn) => this.stream?.acknowledge(lsn),
      onError: (e) => void this.fail(e, false),
    });
  }

  // A relation message: new source columns are added on the target; a
  // changed type or key is a schema change the replication cannot follow.
  private async evolve(relation: Relation): Promise<Relation> {
    const source = await connect(this.spec.source.connection);
    try {
      return await this.evolveWith(source, relation);
    } finally {
      await source.end();
    }
  }

  private async evolveWith(source: pg.ClientBase, relation: Relation): Promise<Relation> {
    const current = await readCatalog(source, relation.schema);
    const table = current.find((t) => t.oid === relation.oid);
    if (!table) throw new Error(`table ${relation.table} is no longer in the source catalog`);
    const known = this.setup!.published.find((p) => p.table.oid === relation.oid)?.table;
    for (const column of relation.columns) {
      const before = known?.columns.find((c) => c.name === column.name);
      if (before && before.typeOid !== column.typeOid) {
        const now = table.columns.find((c) => c.name === column.name)?.typeName ?? `oid ${column.typeOid}`;
        throw new SchemaChangeError(`column ${relation.table}.${column.name} changed type from ${before.typeName} to ${now}`);
      }
    }
    const described = { ...table, columns: relation.columns.map((c) => table.columns.find((t) => t.name === c.name) ?? c) };
    if (this.binary && !(await this.binaryTransferPossible([described], source))) {
      this.emit("SchemaChanged", "Info", `${relation.table} has a column whose type streams only as text: the stream continues in text format`, {
        table: relation.table,
      });
      throw new TextTransferNeeded();
    }
    const targetColumns = this.setup!.plan.forRelation(described).targetColumns;
    const added = await addMissingColumns(this.target!, { schema: this.spec.target.schema, table: relation.table, columns: targetColumns });
    if (added.length > 0) {
      this.emit("SchemaChanged", "Info", `added column(s) ${added.join(", ")} to ${relation.table} on the target`, { table: relation.table });
    }
    // Keys are the target's primary key, whatever replica identity the source sends.
    return { ...relation, columns: relation.columns.map((c) => ({ ...c, isKey: described.columns.find((t) => t.name === c.name)?.isKey ?? false })) };
  }

  // Once a second: a heartbeat message on the source (while streaming), the
  // source's WAL position and the slot's retained WAL, a throughput sample,
  // and the alerts those figures call for.
  private startHeartbeat(emit = true): void {
    const connected = connect(this.spec.source.connection);
    let warned = false;
    let beating = false;
    const beat = async () => {
      if (beating) return;
      beating = true;
      try {
        const source = await connected;
        const { rows } = await source.query<{ current: string; retained: string | null }>(
          `SELECT CASE WHEN $2 THEN pg_logical_emit_message(true, 'heliosdb_heartbeat', '')::text END AS emitted,
                  pg_current_wal_lsn()::text AS current,
                  (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text FROM pg_replication_slots WHERE slot_name = $1) AS retained`,
          [this.slotName, emit],
        );
        this.figures.sourceLsn = parseLsn(rows[0]!.current);
        this.figures.walRetainedBytes = Number(rows[0]!.retained ?? 0);
        this.figures.sample();
        const figures = this.read();
        const over = this.spec.config.maxLagSeconds > 0 && figures.lagSeconds > this.spec.config.maxLagSeconds;
        if (over && !this.figures.lagExceeded) {
          this.emit("REPLICATION_LAG_EXCEEDED", "Warning", `replication lag ${figures.lagSeconds.toFixed(1)} s exceeds ${this.spec.config.maxLagSeconds} s`, {
            current_lag_seconds: figures.lagSeconds.toFixed(3),
            max_lag_seconds: String(this.spec.config.maxLagSeconds),
          });
        }
        this.figures.lagExceeded = over;
        const limit = this.deps.walRetentionWarningBytes ?? 1 << 30;
        if (this.status === "Paused" && this.figures.walRetainedBytes > limit && !warned) {
          warned = true;
          this.emit("WalRetentionHigh", "Warning", `the paused replication's slot retains ${this.figures.walRetainedBytes} bytes of WAL`, {
            retained_bytes: String(this.figures.walRetainedBytes),
          });
        }
      } catch {
        // A missed heartbeat shows as lag; the stream itself reports real failures.
      } finally {
        beating = false;
      }
    };
    this.heartbeat = setInterval(() => void beat(), this.deps.heartbeatIntervalMs ?? 1000);
    this.heartbeat.unref?.();
    this.stopHeartbeat = async () => {
      clearInterval(this.heartbeat);
      const source = await connected.catch(() => undefined);
      await source?.end().catch(() => undefined);
    };
  }

  private stopHeartbeat: () => Promise<void> = async () => undefined;

  // Ends the stream and the target session; what was not applied is streamed
  // again later. From inside the run itself (a failure) it must not wait for
  // the run to end: that would wait for itself.
  private async halt(fromRun = false): Promise<void> {
    this.stopping = true;
    this.abort.abort(new Error("the replication was halted"));
    // First of all: a replication that no longer streams must not hold the source's commits.
    await this.syncTier().catch((e) => this.emit("ReplicationError", "Critical", `could not clear synchronous_standby_names: ${String(e)}`, {}));
    await this.stopHeartbeat();
    this.batcher?.discard();
    await this.stream?.close().catch(() => undefined);
    // A batch still applying finishes (or fails) before the session is rolled back and closed.
    await this.batcher?.drain();
    if (!fromRun) await this.running?.catch(() => undefined);
    await this.applier?.rollback();
    await this.target?.end().catch(() => undefined);
    this.figures.forgetUnapplied();
    this.stream = undefined;
    this.target = undefined;
    this.running = undefined;
  }

  private async fail(error: unknown, fromRun: boolean): Promise<void> {
    if (this.stopping) return;
    this.streaming?.reject(error);
    this.streaming?.promise.catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    this.emit("ReplicationError", "Error", message, { error: error instanceof Error ? error.name : "Error" });
    await this.halt(fromRun);
    this.setStatus("Error");
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
    const client = await connect(this.spec.source.connection);
    try {
      const { rowCount } = await client.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [this.slotName]);
      return rowCount === 1;
    } finally {
      await client.end();
    }
  }

  // The tables this replication writes: as set up, or as the table filter selects them now.
  private async replicatedTables(): Promise<TargetTable[]> {
    let tables = this.setup?.published.map((p) => p.table);
    if (!tables) {
      const source = await connect(this.spec.source.connection);
      const catalog = await readCatalog(source, this.spec.source.schema).finally(() => source.end());
      tables = applyTableFilter(catalog, this.spec.config.tableFilter);
    }
    return tables.map((t) => ({ schema: this.spec.target.schema, table: t.table, columns: t.columns }));
  }

  private setStatus(status: EngineStatus): void {
    if (status === this.figures.status && status !== "Initializing") return;
    const from = this.figures.status;
    this.figures.setStatus(status);
    this.emit("StatusChanged", status === "Error" ? "Error" : "Info", `status ${from} → ${status}`, { from, to: status });
  }

  private emit(type: string, severity: EngineEvent["severity"], message: string, details: Record<string, string>): void {
    this.deps.onEvent?.({ replicationId: this.spec.replicationId, type, severity, message, details });
  }
}

/** A source schema change the replication cannot follow (a changed type or key). */
export class SchemaChangeError extends Error {
  override readonly name = "SchemaChangeError";
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
