// Verification of a cutover: does the target hold what the source holds?
// Row counts per table on both sides, and, where asked, a checksum of each
// table's rows. Each side is read in one REPEATABLE READ transaction, so all
// its tables are counted at one moment (after the fence and the drain,
// neither side changes anyway) — or at the moment an exported snapshot
// holds (snapshot.ts), so that the target can be verified as it was at the
// switch while clients already write there.
//
// The checksum is order-independent: the sum, as numeric, of the first and of
// the last 64 bits of md5 over each row's text (the columns both sides have,
// in the source's order). A missing, extra or changed row changes it; two
// tables with the same rows in another physical order do not. Values are
// compared in their text form under the same session settings on both sides
// (UTC, ISO dates), which is how the engine moves them.
//
// A table the replication transforms (PII hashed, tokenized, redacted,
// columns compressed) differs from its source by design: it is compared by
// count only, and reported as such.
import pg from "pg";
import { qualified } from "../source/publication";
import { open, resolveTables, type ResolvedTable, type TenantDatabase } from "./tables";

export interface VerifyOptions {
  /** Compare a checksum of every table's rows too, not only counts. */
  checksum?: boolean;
  /** Tables whose replication applies transforms: compared by count only. */
  transformed?: readonly string[];
  /** Read the source as this exported snapshot saw it (holdSnapshot), not as it is now. */
  sourceSnapshot?: string;
  /** Read the target as this exported snapshot saw it: e.g. as it was at a routing switch, while clients write there since. */
  targetSnapshot?: string;
}

export interface TableVerification {
  table: string;
  sourceRows: number;
  targetRows: number;
  /** match or mismatch when checksums were compared; "count only" for a transformed table; "not compared" without `checksum`. */
  checksum: "match" | "mismatch" | "count only" | "not compared";
  /** The columns the checksum covered (those both sides have). */
  columns?: string[];
  ok: boolean;
}

export interface Verification {
  /** Every table's count (and checksum, where compared) matches. */
  ok: boolean;
  tables: TableVerification[];
  /** The tables that did not match, by name. */
  mismatched: string[];
}

interface Measure {
  rows: number;
  sum?: string;
}

/** Compares `tables` (names in `source.schema`; the same names in `target.schema`). */
export async function verify(source: TenantDatabase, target: TenantDatabase, tables: readonly string[], options: VerifyOptions = {}): Promise<Verification> {
  const from = await open(source, "heliosdb_verify");
  try {
    const to = await open(target, "heliosdb_verify");
    try {
      // Counted as named: a partitioned table's count covers its partitions.
      const [sourceTables, targetTables] = await Promise.all([
        resolveTables(from, source.schema, tables).then((r) => r.filter((t) => t.named)),
        resolveTables(to, target.schema, tables).then((r) => r.filter((t) => t.named)),
      ]);
      const transformed = new Set(options.transformed ?? []);
      // One table after another: each session runs one query at a time (pg queues concurrent ones, a use pg 9 removes).
      const plans: { s: ResolvedTable; t: ResolvedTable; columns: string[] | undefined }[] = [];
      for (const s of sourceTables) {
        const t = targetTables.find((x) => x.table === s.table)!;
        const compare = options.checksum && !transformed.has(s.table);
        plans.push({ s, t, columns: compare ? await commonColumns(from, to, s, t) : undefined });
      }
      const [a, b] = await Promise.all([
        measure(from, plans.map((p) => ({ table: p.s, columns: p.columns })), options.sourceSnapshot),
        measure(to, plans.map((p) => ({ table: p.t, columns: p.columns })), options.targetSnapshot),
      ]);
      const results = plans.map((p, i): TableVerification => {
        const countOk = a[i]!.rows === b[i]!.rows;
        const checksum = p.columns ? (a[i]!.sum === b[i]!.sum ? "match" : "mismatch") : options.checksum ? "count only" : "not compared";
        return {
          table: p.s.table,
          sourceRows: a[i]!.rows,
          targetRows: b[i]!.rows,
          checksum,
          ...(p.columns ? { columns: p.columns } : {}),
          ok: countOk && checksum !== "mismatch",
        };
      });
      const mismatched = results.filter((r) => !r.ok).map((r) => r.table);
      return { ok: mismatched.length === 0, tables: results, mismatched };
    } finally {
      await to.end().catch(() => undefined);
    }
  } finally {
    await from.end().catch(() => undefined);
  }
}

// The source's columns (in its order) that the target table has too.
async function commonColumns(from: pg.ClientBase, to: pg.ClientBase, s: ResolvedTable, t: ResolvedTable): Promise<string[]> {
  const sql = "SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum";
  const [sc, tc] = await Promise.all([from.query<{ attname: string }>(sql, [s.oid]), to.query<{ attname: string }>(sql, [t.oid])]);
  const there = new Set(tc.rows.map((r) => r.attname));
  return sc.rows.map((r) => r.attname).filter((c) => there.has(c));
}

async function measure(client: pg.ClientBase, tables: { table: ResolvedTable; columns: string[] | undefined }[], snapshot?: string): Promise<Measure[]> {
  // The snapshot is imported first: SET TRANSACTION SNAPSHOT must precede every query of the transaction.
  await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;${snapshot ? ` SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(snapshot)};` : ""}
    SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres';
    SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'`);
  try {
    const measures: Measure[] = [];
    for (const { table, columns } of tables) {
      if (!columns) {
        const { rows } = await client.query<{ rows: string }>(`SELECT count(*)::text AS rows FROM ${qualified(table)}`);
        measures.push({ rows: Number(rows[0]!.rows) });
        continue;
      }
      const row = columns.length > 0 ? `ROW(${columns.map((c) => pg.escapeIdentifier(c)).join(", ")})::text` : "''";
      const { rows } = await client.query<{ rows: string; sum: string }>(
        `SELECT count(*)::text AS rows,
                coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text || '/' ||
                coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text AS sum
           FROM (SELECT md5(${row}) AS h FROM ${qualified(table)}) r`,
      );
      measures.push({ rows: Number(rows[0]!.rows), sum: rows[0]!.sum });
    }
    await client.query("COMMIT");
    return measures;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  }
}
