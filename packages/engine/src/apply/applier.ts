// Applies change batches to the target in transactions, idempotently, with
// the checkpoint in the same transaction. Within a batch every row key is
// collapsed to its final state (last writer wins), then written per table
// through a staging table (stage.ts): the end state equals applying the
// changes one by one, at a fraction of the round trips.
import pg from "pg";
import type { ChangeBatch } from "../codec/batch";
import { qualified } from "../source/publication";
import { WireRow, hasUnchangedToast, rowFields, type WireValue } from "../source/wire-row";
import { UNCHANGED_TOAST, type Relation, type Row, type TransactionInfo } from "../types";
import { keyText } from "./key-text";
import { checkpointStatement, type Totals } from "./checkpoint";
import { Deferred } from "./deferred";
import { Stage, type StagedRow } from "./stage";

/** A target row that was not as the stream expected: missing, or present when it should not be. */
export interface Conflict {
  table: string;
  key: Record<string, string | null>;
  /** What the stream did, and what it found. */
  kind: "insert_found_existing" | "update_found_missing" | "delete_found_missing";
  /** Whether the source's version was applied (source wins); false when a partial update found no row. */
  resolved: boolean;
}

/** Counters of what the applier has written; read by the pipeline's figures. */
export interface ApplyCounters {
  rows: number;
  bytes: number;
  transactions: number;
  conflictsDetected: number;
  conflictsResolved: number;
}

interface PendingRow {
  /** Whether the first change of the batch for this key expected the row to exist. */
  expectExists: boolean;
  op: "upsert" | "delete" | "partial";
  row: Row;
}

interface PendingTable {
  relation: Relation;
  /** New rows in stream order, while the batch holds nothing else for the table: they need no key. */
  inserts: Row[];
  /** Each row key's final state, once the batch holds more than new rows for the table. */
  rows: Map<string, PendingRow> | undefined;
}

export class Applier {
  readonly counters: ApplyCounters = { rows: 0, bytes: 0, transactions: 0, conflictsDetected: 0, conflictsResolved: 0 };
  private inTransaction = false;
  // Whether the source transaction being applied has carried a change yet (it may span batches).
  private changed = false;
  private pending = new Map<string, PendingTable>();
  // Staging tables are created inside target transactions: a rollback drops them.
  private readonly stages = new Map<string, Stage>();
  // BEGIN, savepoints and the like, sent with the next statement (deferred.ts).
  private readonly deferred = new Deferred();

  constructor(
    private readonly client: pg.ClientBase,
    private readonly replicationId: string,
    private readonly targetSchema: string,
    private readonly onConflict: (conflict: Conflict) => void = () => undefined,
    /** The replication's lifetime totals including this batch, committed with the checkpoint. */
    private readonly totals?: () => Totals,
  ) {}

  /**
   * Applies a batch. When it ends with a commit, the target transaction is
   * committed with the checkpoint and the last applied transaction returned;
   * otherwise (a source transaction larger than one batch) it stays open.
   */
  async apply(batch: ChangeBatch): Promise<TransactionInfo | undefined> {
    if (!this.inTransaction) {
      this.deferred.add("BEGIN");
      this.inTransaction = true;
    }
    try {
      let last: TransactionInfo | undefined;
      for (const item of batch.items) {
        if (item.kind === "commit") {
          last = item.transaction;
          // A transaction that changed nothing replicated (a heartbeat) is not counted.
          if (this.changed) this.counters.transactions++;
          this.changed = false;
          continue;
        }
        this.changed = true;
        const change = item.change;
        if (change.kind === "truncate") {
          await this.flush();
          this.deferred.add(`TRUNCATE ${change.relations.map((r) => this.target(r)).join(", ")}`);
          continue;
        }
        this.counters.rows++;
        // A relation whose shape changed (an added column) starts afresh.
        const pending = this.pending.get(tableId(change.relation));
        if (pending && pending.relation !== change.relation) await this.flush();
        if (change.kind === "update" && change.oldRow && hasUnchangedToast(change.newRow) && keyOf(change.relation, change.oldRow) !== keyOf(change.relation, change.newRow)) {
          // A row moved to a new key, with values the stream omitted: they are
          // only on the target, so the row is updated in place, key and all, in
          // stream order.
          await this.flush();
          this.counters.bytes += textBytes(change.newRow) + textBytes(change.oldRow);
          await this.updatePartial(change.relation, rowFields(change.newRow), rowFields(change.oldRow));
          continue;
        }
        this.collect(change.relation, change.kind, change.kind === "delete" ? undefined : change.newRow, change.kind === "insert" ? undefined : change.oldRow);
      }
      await this.flush();
      const endsWithCommit = batch.items[batch.items.length - 1]?.kind === "commit";
      if (!endsWithCommit || !last) {
        // The transaction stays open for the next batch: nothing stays held, so that whatever else uses the
        // session meanwhile (a relation's ALTER TABLE) runs after it, as it would have.
        await this.sendHeld();
        return undefined;
      }
      // The checkpoint and COMMIT, with whatever is held: for a batch of new rows, the second and last round trip.
      const checkpoint = checkpointStatement(this.replicationId, {
        phase: "streaming",
        lsn: last.endLsn,
        commitTime: last.commitTime,
        xid: last.xid,
        totals: this.totals?.() ?? { ...this.counters, rawBatchBytes: 0, shippedBatchBytes: 0 },
      });
      await this.deferred.query(this.client, `${checkpoint};\nCOMMIT`);
      this.inTransaction = false;
      return last;
    } catch (e) {
      await this.rollback();
      throw e;
    }
  }

  /** Abandons an open transaction (on stop or error): nothing of it is kept. */
  async rollback(): Promise<void> {
    this.pending.clear();
    this.stages.clear();
    this.deferred.clear();
    this.changed = false;
    if (this.inTransaction) {
      this.inTransaction = false;
      await this.client.query("ROLLBACK").catch(() => undefined);
    }
  }

  private collect(relation: Relation, kind: "insert" | "update" | "delete", newRow?: Row, oldRow?: Row): void {
    const id = tableId(relation);
    let table = this.pending.get(id);
    if (!table) {
      table = { relation, inserts: [], rows: undefined };
      this.pending.set(id, table);
    }
    if (newRow) this.counters.bytes += textBytes(newRow);
    if (oldRow) this.counters.bytes += textBytes(oldRow);
    if (kind === "insert" && !table.rows && !hasUnchangedToast(newRow!)) table.inserts.push(newRow!);
    else collapse(relation, keyed(table), kind, newRow, oldRow);
  }

  private async flush(): Promise<void> {
    for (const [id, table] of this.pending) {
      const relation = table.relation;
      let stage = this.stages.get(id);
      if (!stage?.fits(relation)) this.stages.set(id, (stage = new Stage(this.client, this.deferred, this.targetSchema, relation)));
      // Only new rows: one COPY, unless one of them exists after all (or repeats a key).
      if (!table.rows && (await stage.insert(table.inserts))) continue;
      const rows = keyed(table);
      const staged: StagedRow[] = [];
      const partial: PendingRow[] = [];
      // Pending rows other than partial ones are already staged rows.
      for (const row of rows.values()) (row.op === "partial" ? partial : staged).push(row as StagedRow);
      for (const surprise of await stage.write(staged)) {
        let k = 0;
        const row = relation.columns.map((c) => (c.isKey ? surprise.key[k++]! : null));
        // A delete that finds nothing left the target as the source wants it; an upsert wrote the source's row.
        const kind = surprise.op === "delete" ? "delete_found_missing" : surprise.expectExists ? "update_found_missing" : "insert_found_existing";
        this.conflict(relation, row, kind, true);
      }
      for (const row of partial) await this.updatePartial(relation, rowFields(row.row));
    }
    this.pending.clear();
  }

  // An update whose unchanged TOASTed values the stream did not send: only
  // the sent columns can be written, and a missing row cannot be recreated.
  // `keyRow` holds the row's old key when the update moved it to a new one.
  private async updatePartial(relation: Relation, values: WireValue[], keyRow: WireValue[] = values): Promise<void> {
    // Binary values travel as binary parameters: pg sends a Buffer in binary format.
    const params: WireValue[] = [];
    const moved = keyRow !== values;
    const sets = relation.columns
      .map((c, i) => [c, values[i]] as const)
      .filter(([c, v]) => (moved || !c.isKey) && v !== UNCHANGED_TOAST)
      .map(([c, v]) => `${pg.escapeIdentifier(c.name)} = $${params.push(v!)}`);
    const where = relation.columns
      .map((c, i) => [c, keyRow[i]] as const)
      .filter(([c]) => c.isKey)
      .map(([c, v]) => `${pg.escapeIdentifier(c.name)} = $${params.push(v!)}`);
    if (sets.length === 0) return;
    // A statement with parameters travels alone: what is held goes first.
    await this.sendHeld();
    const result = await this.client.query(`UPDATE ${this.target(relation)} SET ${sets.join(", ")} WHERE ${where.join(" AND ")}`, params);
    if (result.rowCount === 0) this.conflict(relation, keyRow, "update_found_missing", false);
  }

  private async sendHeld(): Promise<void> {
    const held = this.deferred.take();
    if (held) await this.client.query(held);
  }

  private conflict(relation: Relation, row: WireValue[], kind: Conflict["kind"], resolved: boolean): void {
    this.counters.conflictsDetected++;
    if (resolved) this.counters.conflictsResolved++;
    const key = Object.fromEntries(
      relation.columns.map((c, i) => [c, row[i]] as const).filter(([c]) => c.isKey).map(([c, v]) => [c.name, keyText(c, v)]),
    );
    this.onConflict({ table: relation.table, key, kind, resolved });
  }

  private target(relation: Relation): string {
    return qualified({ schema: this.targetSchema, table: relation.table });
  }
}

// A table's rows by key, built from its new rows on first need.
function keyed(table: PendingTable): Map<string, PendingRow> {
  if (table.rows) return table.rows;
  const rows = (table.rows = new Map());
  for (const row of table.inserts) collapse(table.relation, rows, "insert", row);
  table.inserts = [];
  return rows;
}

// Folds one change into its key's final state within the batch (last writer wins).
function collapse(relation: Relation, rows: Map<string, PendingRow>, kind: "insert" | "update" | "delete", newRow?: Row, oldRow?: Row): void {
  const oldKey = oldRow ? keyOf(relation, oldRow) : undefined;
  const newKey = newRow ? keyOf(relation, newRow) : undefined;
  if (kind === "delete" || (oldKey !== undefined && newKey !== undefined && oldKey !== newKey)) {
    const key = oldKey!;
    const prior = rows.get(key);
    rows.set(key, { expectExists: prior?.expectExists ?? true, op: "delete", row: oldRow! });
  }
  if (!newRow || newKey === undefined) return;
  const prior = rows.get(newKey);
  // An update that moves a row to a new key expects that key to be free.
  const expectExists = prior?.expectExists ?? (kind === "update" && (oldKey === undefined || oldKey === newKey));
  if (hasUnchangedToast(newRow)) {
    // Fill unchanged values from an earlier version of the row in this batch:
    // a full one makes the row whole again, a partial one fills what it can.
    const values = rowFields(newRow);
    const earlier = prior && prior.op !== "delete" ? rowFields(prior.row) : undefined;
    const merged = earlier ? values.map((v, i) => (v === UNCHANGED_TOAST ? earlier[i]! : v)) : values;
    rows.set(newKey, { expectExists, op: prior?.op === "upsert" ? "upsert" : "partial", row: merged });
    return;
  }
  rows.set(newKey, { expectExists, op: "upsert", row: newRow });
}

// The positions of a relation's key columns, computed once per relation.
const keyPositions = new WeakMap<Relation, number[]>();

function keyOf(relation: Relation, row: Row): string {
  let positions = keyPositions.get(relation);
  if (!positions) keyPositions.set(relation, (positions = relation.columns.flatMap((c, i) => (c.isKey ? [i] : []))));
  if (positions.length === 1) return keyPart(row, positions[0]!);
  let key = "";
  for (const i of positions) key += `${keyPart(row, i)}\u0000`;
  return key;
}

// A WireRow decodes just the values asked for: both kinds of row give the same key for the same values.
function keyPart(row: Row, index: number): string {
  if (row instanceof WireRow) return row.key(index);
  const v = row[index];
  return Buffer.isBuffer(v) ? v.toString("latin1") : String(v);
}

function textBytes(row: Row): number {
  if (row instanceof WireRow) return row.textBytes;
  let bytes = 0;
  for (const v of row) if (typeof v === "string" || Buffer.isBuffer(v)) bytes += Buffer.byteLength(v);
  return bytes;
}

// Computed once per relation: every row asks.
const tableIds = new WeakMap<Relation, string>();
function tableId(relation: Relation): string {
  let id = tableIds.get(relation);
  if (id === undefined) tableIds.set(relation, (id = `${relation.schema}.${relation.table}`));
  return id;
}
