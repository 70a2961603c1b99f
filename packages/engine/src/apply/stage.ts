// Writes a batch's collapsed rows of one table in two round trips, however
// many rows: COPY them (in the stream's format, text or binary) into a
// session-local staging table, then one statement deletes and upserts from it
// and returns only the rows that were not as the stream expected. What needs
// no answer (the staging table's creation or TRUNCATE, a savepoint) travels
// in front of the next statement (deferred.ts). A VALUES
// list with a parameter per value would make PostgreSQL parse and plan a
// statement as large as the batch.
import pg from "pg";
import { qualified } from "../source/publication";
import { isBinary } from "../source/wire-row";
import type { Relation, Row } from "../types";
import { CopyData, copyIn } from "./copy-in";
import { CopyWriter, type StageColumns } from "./copy-writer";
import type { Deferred } from "./deferred";

export interface StagedRow {
  op: "upsert" | "delete";
  /** Whether the stream expected the row to exist on the target. */
  expectExists: boolean;
  row: Row;
}

/** A row that was not as expected: its key values, as text. */
export interface StageSurprise {
  op: "upsert" | "delete";
  /** Whether the stream expected the row to exist on the target. */
  expectExists: boolean;
  key: (string | null)[];
}

let stages = 0;

export class Stage {
  private readonly name = `heliosdb_stage_${++stages}`;
  private created = false;
  private readonly target: string;
  private readonly names: string[];

  constructor(
    private readonly client: pg.ClientBase,
    private readonly deferred: Deferred,
    schema: string,
    private readonly relation: Relation,
  ) {
    this.target = qualified({ schema, table: relation.table });
    this.names = relation.columns.map((c) => pg.escapeIdentifier(c.name));
  }

  /** Whether this stage fits rows of `relation` (the same columns, in order). */
  fits(relation: Relation): boolean {
    return relation.columns.length === this.relation.columns.length && relation.columns.every((c, i) => c.name === this.relation.columns[i]!.name);
  }

  async write(rows: readonly StagedRow[]): Promise<StageSurprise[]> {
    if (rows.length === 0) return [];
    const { target, names } = this;
    if (rows.every((r) => r.op === "upsert" && !r.expectExists) && (await this.insert(rows.map((r) => r.row)))) return [];
    const stage = pg.escapeIdentifier(this.name);
    const keys = this.relation.columns.filter((c) => c.isKey).map((c) => pg.escapeIdentifier(c.name));
    const others = names.filter((_, i) => !this.relation.columns[i]!.isKey);
    if (!this.created) {
      // CREATE TABLE AS copies types but no NOT NULL: delete rows carry only their key.
      this.deferred.add(`CREATE TEMP TABLE ${stage} AS SELECT ${names.join(", ")} FROM ${target} WITH NO DATA`);
      this.deferred.add(`ALTER TABLE ${stage} ADD COLUMN heliosdb_op "char", ADD COLUMN heliosdb_expect boolean`);
      this.created = true;
    } else {
      this.deferred.add(`TRUNCATE ${stage}`);
    }
    await this.copy(
      `${stage} (${names.join(", ")}, heliosdb_op, heliosdb_expect)`,
      rows.map((r) => r.row),
      rows.map((r): StageColumns => ({ op: r.op === "delete" ? "d" : "u", expect: r.expectExists })),
    );
    const match = (a: string, b: string) => keys.map((k) => `${a}.${k} = ${b}.${k}`).join(" AND ");
    const keyText = (alias: string) => keys.map((k) => `${alias}.${k}::text`).join(", ");
    const update = others.length > 0 ? `DO UPDATE SET ${others.map((c) => `${c} = EXCLUDED.${c}`).join(", ")}` : "DO NOTHING";
    // xmax = 0 tells a freshly inserted row from one ON CONFLICT updated.
    const { rows: surprises } = await this.deferred.query(
      this.client,
      `WITH d AS (DELETE FROM ${target} t USING ${stage} s WHERE s.heliosdb_op = 'd' AND ${match("t", "s")} RETURNING ${keys.map((k) => `t.${k}`).join(", ")}),
                 u AS (INSERT INTO ${target} (${names.join(", ")}) SELECT ${names.join(", ")} FROM ${stage} WHERE heliosdb_op = 'u'
                       ON CONFLICT (${keys.join(", ")}) ${update} RETURNING (xmax = 0) AS inserted, ${keys.join(", ")})
             SELECT 'd' AS op, s.heliosdb_expect, ${keyText("s")} FROM ${stage} s
              WHERE s.heliosdb_op = 'd' AND s.heliosdb_expect AND NOT EXISTS (SELECT 1 FROM d WHERE ${match("d", "s")})
             UNION ALL
             SELECT 'u', s.heliosdb_expect, ${keyText("u")} FROM u JOIN ${stage} s ON s.heliosdb_op = 'u' AND ${match("u", "s")}
              WHERE u.inserted = s.heliosdb_expect`,
      "array",
    );
    return (surprises as [string, boolean, ...(string | null)[]][]).map(([op, expectExists, ...key]) => ({
      op: op === "d" ? "delete" : "upsert",
      expectExists,
      key,
    }));
  }

  /**
   * New rows only (the usual stream of inserts): one COPY into the table
   * itself. Returns false, having written nothing, when a row exists after
   * all or a key repeats: write() then finds and resolves the conflicts.
   */
  async insert(rows: readonly Row[]): Promise<boolean> {
    if (rows.length === 0) return true;
    // The savepoint is set by the same string as the COPY, just before it: a failed COPY rolls back to it.
    this.deferred.add("SAVEPOINT heliosdb_direct");
    try {
      await this.copy(`${this.target} (${this.names.join(", ")})`, rows, undefined);
      this.deferred.add("RELEASE SAVEPOINT heliosdb_direct");
      return true;
    } catch (e) {
      if ((e as pg.DatabaseError).code !== "23505") throw e;
      this.deferred.add("ROLLBACK TO SAVEPOINT heliosdb_direct");
      return false;
    }
  }

  // `extra[i]`: the staging table's extra columns for row i. Rows of binary
  // transfer go in binary format (a batch holds rows of one format). The rows
  // are formatted first: a row that cannot be sent leaves the session as it
  // was, and what is held (deferred.ts) is still held.
  private async copy(into: string, rows: readonly Row[], extra: readonly StageColumns[] | undefined): Promise<void> {
    const binary = rows.length > 0 && isBinary(rows[0]!);
    const data = new CopyData();
    const out = new CopyWriter(data, binary);
    for (let i = 0; i < rows.length; i++) out.row(rows[i]!, extra?.[i]);
    out.end();
    await copyIn(this.client, this.deferred.before(`COPY ${into} FROM STDIN${binary ? " (FORMAT binary)" : ""}`), data);
  }
}
