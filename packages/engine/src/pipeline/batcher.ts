// Turns the decoded change stream into batches and applies them: rows are
// transformed as they arrive, gathered per QoS settings, sealed and opened
// by the codec, applied with the checkpoint, and only then acknowledged to
// the source. Flushes run one at a time, in order; batches apply one at a
// time, in order, while the next one gathers and is sealed and opened.
import type { Applier } from "../apply/applier";
import { FENCE_MESSAGE_PREFIX } from "../cutover/fence";
import { MARK_MESSAGE_PREFIX } from "../cutover/mark";
import type { ChangeBatch, BatchItem } from "../codec/batch";
import { onSide } from "../failure";
import type { BatchCodec, SealedBatch } from "../codec/codec";
import type { PgOutputMessage } from "../source/pgoutput";
import { LineArena, WireRow, rowValues, type Row } from "../source/wire-row";
import type { RowTransformer } from "../transform/plan";
import type { Lsn, Relation, RowChange } from "../types";
import type { Figures } from "./figures";
import type { QosSettings } from "./qos";

export interface BatcherDeps {
  applier: Applier;
  /** Seals and opens batches; absent when neither compression nor encryption is on. */
  codec?: BatchCodec;
  /** The trip between sealing and opening (in-process by default; tests tamper with it). */
  transport?: (sealed: SealedBatch) => Promise<SealedBatch>;
  settings: () => QosSettings;
  figures: Figures;
  /** The row transform of a relation's rows, or undefined when it has none. */
  transformFor: (relation: Relation) => RowTransformer | undefined;
  /** Brings the target in line with a relation message; returns the relation to apply with. */
  onRelation: (relation: Relation) => Promise<Relation>;
  /**
   * Whether the replication carries a relation's changes, and from where:
   * false for a table it no longer replicates (changes of transactions in
   * flight when it left the publication), or the LSN before which commits
   * are skipped because the table was copied under a later snapshot.
   */
  carries: (relationOid: number) => boolean | Lsn;
  /** Writes queued token-vault entries; awaited before a batch is applied. */
  beforeApply: () => Promise<void>;
  acknowledge: (lsn: Lsn) => void;
  onError: (error: unknown) => void;
}

/**
 * Batches cut and not yet applied before the stream waits: the one applying,
 * and the next, sealed and opened meanwhile. More read-ahead was measured and
 * did not pay: with 3, a million §2.1.1 rows cost 6 CPU-seconds more in V8's
 * garbage collector (rows that wait longer outlive the young generation) and
 * the run took 31 s instead of 25 s (docs/benchmarks.md).
 */
export const READ_AHEAD_BATCHES = 1;

export class Batcher {
  private items: BatchItem[] = [];
  private rows = 0;
  private commits = 0;
  private firstCommitAt = 0;
  private sequence = 0n;
  private xid = 0;
  // Transactions in batches sent to the applier but not yet committed on the target.
  private unacknowledged = 0;
  // Batches cut and not yet applied and acknowledged, in order: each settles when its batch has applied (or failed).
  private readonly unapplied: Promise<void>[] = [];
  // Between a transaction's begin and its commit.
  private inTransaction = false;
  // The transaction being received carries a cutover's fence or mark: a drain waits for it.
  private urgent = false;
  private applying: Promise<void> = Promise.resolve();
  private failure: unknown;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<unknown> = Promise.resolve();
  // The commit LSN of the transaction being received.
  private finalLsn: Lsn = 0n;
  private readonly relations = new Map<number, { relation: Relation; transform?: RowTransformer; skipBefore?: Lsn }>();
  // Where transformed rows are written, as the decoder writes the rows it reads.
  private readonly arena = new LineArena();
  private readonly ignored = new Set<number>();

  constructor(private readonly deps: BatcherDeps) {}

  /**
   * Handles one decoded message. Most are handled at once (no promise: the
   * stream delivers the next without a turn of the event loop); a promise is
   * returned when the next message must wait — a relation change, or a flush
   * that has to wait for the batch before it.
   */
  onMessage(message: PgOutputMessage): void | Promise<void> {
    if (this.failure) throw this.failure;
    switch (message.tag) {
      case "relation":
        return this.relation(message.relation);
      case "begin":
        this.inTransaction = true;
        this.xid = message.xid;
        this.finalLsn = message.finalLsn;
        this.deps.figures.received(message.commitTime);
        return;
      case "change":
        if (!this.carried(message.change)) return;
        this.items.push({ kind: "change", change: this.prepare(message.change) });
        if (message.change.kind !== "truncate") this.rows++;
        // A source transaction larger than a batch is applied in pieces of one target transaction.
        if (this.rows >= this.deps.settings().batchRows) return this.flush();
        return;
      case "message":
        if (message.transactional && (message.prefix === FENCE_MESSAGE_PREFIX || message.prefix === MARK_MESSAGE_PREFIX)) this.urgent = true;
        return;
      case "commit":
        this.inTransaction = false;
        this.items.push({
          kind: "commit",
          transaction: { xid: this.xid, commitLsn: message.commitLsn, endLsn: message.endLsn, commitTime: message.commitTime },
        });
        if (this.commits++ === 0) this.firstCommitAt = Date.now();
        // A fence's transaction is the last a cutover waits for, while the tenant's writes wait (a mark's, the one it
        // waits for before): applied at once, whatever the tier's interval.
        if (this.urgent) {
          this.urgent = false;
          return this.flush();
        }
        return this.scheduleFlush();
      default:
        return;
    }
  }

  /** Whether everything received is applied and acknowledged: no transaction half received, nothing gathered, nothing applying. */
  get caughtUp(): boolean {
    return !this.inTransaction && this.items.length === 0 && this.unapplied.length === 0 && !this.failure;
  }

  /** Applies whatever is gathered; one flush at a time, in order. */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushNow());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** Drops what is gathered but not applied (it will be streamed again) and stops the timer. */
  discard(): void {
    clearTimeout(this.timer);
    this.items = [];
    this.rows = 0;
    this.commits = 0;
    this.unacknowledged = 0;
    this.inTransaction = false;
    this.urgent = false;
  }

  private async relation(relation: Relation): Promise<void> {
    const carried = this.deps.carries(relation.oid);
    if (carried === false) {
      this.ignored.add(relation.oid);
      return;
    }
    const known = await this.deps.onRelation(relation);
    const skipBefore = typeof carried === "bigint" ? carried : undefined;
    this.relations.set(relation.oid, { relation: known, transform: this.deps.transformFor(known), ...(skipBefore ? { skipBefore } : {}) });
  }

  // Drops what the replication does not carry (see BatcherDeps.carries); a
  // truncate keeps the relations it does.
  private carried(change: RowChange): boolean {
    if (change.kind === "truncate") {
      change.relations = change.relations.filter((r) => this.carriedNow(r.oid));
      return change.relations.length > 0;
    }
    return this.carriedNow(change.relation.oid);
  }

  private carriedNow(oid: number): boolean {
    if (this.ignored.has(oid)) return false;
    const skipBefore = this.relations.get(oid)?.skipBefore;
    return skipBefore === undefined || this.finalLsn >= skipBefore;
  }

  // Points the change at the relation the target is applied with, and runs
  // the relation's row transform. Rows without a transform keep the bytes
  // the stream sent (WireRow): nothing is decoded that nobody reads.
  private prepare(change: RowChange): RowChange {
    if (change.kind === "truncate") {
      change.relations = change.relations.map((r) => this.relations.get(r.oid)?.relation ?? r);
      return change;
    }
    const known = this.relations.get(change.relation.oid);
    if (!known) throw new Error(`a change for ${change.relation.table} arrived before its relation`);
    change.relation = known.relation;
    const t = known.transform;
    if (!t) return change;
    if (change.kind !== "delete") change.newRow = this.transformed(t, change.newRow);
    if (change.kind !== "insert" && change.oldRow) change.oldRow = this.transformed(t, change.oldRow);
    return change;
  }

  private transformed(t: RowTransformer, row: Row): Row {
    return row instanceof WireRow && !row.binary ? t.transformLine(row, this.arena) : t.transform(rowValues(row));
  }

  private scheduleFlush(): Promise<void> | undefined {
    const { batchRows, flushIntervalMs } = this.deps.settings();
    const age = Date.now() - this.firstCommitAt;
    // No rows gathered: the commit ends a transaction whose rows already went out in earlier
    // batches (their target transaction is open, waiting for it), or one with nothing to apply.
    if (this.rows === 0 || this.rows >= batchRows || age >= flushIntervalMs) return this.flush();
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch(this.deps.onError);
      }, flushIntervalMs - age);
    }
    return undefined;
  }

  // Cuts the gathered batch, seals and opens it at once, and queues its apply
  // behind the batches before it: decoding, sealing and applying overlap, and
  // order is kept. The stream waits only while READ_AHEAD_BATCHES batches are
  // cut and not applied.
  private async flushNow(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.failure) throw this.failure;
    if (this.items.length === 0) return;
    const batch: ChangeBatch = { sequence: this.sequence++, items: this.items };
    const commits = this.commits;
    this.items = [];
    this.rows = 0;
    this.commits = 0;
    const opened = this.sealAndOpen(batch);
    // Not this batch's failure yet: it is reported when its turn to apply comes.
    opened.catch(() => undefined);
    // A batch after a failed one is not applied: the failure stops the pipeline, and the stream sends both again.
    const applied = this.applying.then(() => (this.failure ? undefined : this.applyBatch(opened, commits)));
    this.applying = applied.then(
      () => void this.unapplied.shift(),
      (e: unknown) => {
        this.unapplied.shift();
        this.failure ??= e;
        this.deps.onError(e);
      },
    );
    this.unapplied.push(this.applying);
    while (this.unapplied.length > READ_AHEAD_BATCHES && !this.failure) await this.unapplied[0];
    if (this.failure) throw this.failure;
  }

  // The batch as the applier receives it: through the codec when one is set.
  // A batch of commits alone (heartbeats, transactions whose changes were
  // all filtered out) holds no tenant data: it only moves the checkpoint.
  private async sealAndOpen(batch: ChangeBatch): Promise<ChangeBatch> {
    if (!this.deps.codec || !batch.items.some((item) => item.kind === "change")) return batch;
    const sealed = await this.deps.codec.seal(batch);
    return this.deps.codec.open(this.deps.transport ? await this.deps.transport(sealed) : sealed);
  }

  /** Resolves when no batch is being applied. */
  drain(): Promise<void> {
    return this.applying;
  }

  private async applyBatch(opened: Promise<ChangeBatch>, commits: number): Promise<void> {
    // Commits of a batch that ends inside a transaction are applied with the next one.
    this.unacknowledged += commits;
    const toApply = await opened;
    await this.deps.beforeApply();
    const last = await onSide("target", this.deps.applier.apply(toApply));
    if (last) {
      this.deps.figures.applied(this.unacknowledged, last);
      this.unacknowledged = 0;
      this.deps.acknowledge(last.endLsn);
    }
  }
}
