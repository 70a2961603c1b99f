// The publication that tells PostgreSQL what to decode for a replication:
// which tables, which columns (table_filter) and which rows (row_filter and
// Filter transforms). PostgreSQL validates the row expressions itself; the
// engine only makes sure a user's text cannot leave its WHERE clause.
import pg from "pg";
import type { CatalogTable } from "./catalog";

/** A row expression the source refused, or one that could escape its clause. */
export class RowFilterError extends Error {
  override readonly name = "RowFilterError";
}

/** What the publication publishes for one table, as PostgreSQL stored it. */
export interface PublishedTable {
  table: CatalogTable;
  /** The row filter as PostgreSQL deparsed it (pg_get_expr), or null. */
  where: string | null;
}

/** Row expressions of a replication: the row filter, and Filter transforms by table. */
export interface RowExpressions {
  rowFilter?: string;
  /** Rows matching these are dropped (Filter transform), by table name. */
  drop: Map<string, string[]>;
}

/**
 * Creates (or re-creates) the publication, in one transaction that checks,
 * before committing, that the source will still accept UPDATE and DELETE on
 * every table: a row filter on a column outside the replica identity would
 * make PostgreSQL refuse them, breaking the tenant's application.
 */
export async function createPublication(
  client: pg.ClientBase,
  name: string,
  tables: CatalogTable[],
  rows: RowExpressions,
  serverVersion: number,
): Promise<PublishedTable[]> {
  const items = tables.map((t) => {
    const expression = rowExpression(t.table, rows);
    if (expression && serverVersion < 150000) {
      throw new RowFilterError("row filters need PostgreSQL 15 or later on the source");
    }
    // A column list is fixed: columns added later would never be published.
    // So only a table whose columns the filter narrows gets one (PostgreSQL
    // 15+; validation refuses such filters on 14).
    const narrowed = t.columnsFiltered && serverVersion >= 150000;
    const columns = narrowed ? ` (${t.columns.map((c) => pg.escapeIdentifier(c.name)).join(", ")})` : "";
    return `${qualified(t)}${columns}${expression ? ` WHERE (${expression})` : ""}`;
  });
  await client.query("BEGIN");
  try {
    await client.query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(name)}`);
    // The extended protocol runs exactly one statement: no `;` can add another.
    await client.query({
      text: `CREATE PUBLICATION ${pg.escapeIdentifier(name)} FOR TABLE ${items.join(", ")}`,
      queryMode: "extended",
    } as pg.QueryConfig);
    for (const t of tables) {
      for (const verb of ["UPDATE", "DELETE"]) {
        const sql =
          verb === "UPDATE"
            ? `EXPLAIN UPDATE ${qualified(t)} SET ${pg.escapeIdentifier(t.columns[0]!.name)} = ${pg.escapeIdentifier(t.columns[0]!.name)} WHERE false`
            : `EXPLAIN DELETE FROM ${qualified(t)} WHERE false`;
        await client.query(sql);
      }
    }
    const published = await readPublication(client, name, tables);
    await client.query("COMMIT");
    return published;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    if (e instanceof RowFilterError) throw e;
    const error = e as pg.DatabaseError;
    const detail = error.detail ? ` (${error.detail})` : "";
    // UPDATE and DELETE only carry the replica identity's old values, which a filter must be able to read.
    const hint = /replica identity/.test(error.detail ?? "")
      ? "; filters and column lists can only use replica-identity columns: ALTER TABLE ... REPLICA IDENTITY FULL lets them use any column"
      : "";
    throw new RowFilterError(`the source refused the publication: ${error.message}${detail}${hint}`);
  }
}

/** The published tables with their row filters as PostgreSQL stored them. */
export async function readPublication(
  client: pg.ClientBase,
  name: string,
  tables: CatalogTable[],
): Promise<PublishedTable[]> {
  const { rows } = await client.query<{ prrelid: number; qual: string | null }>(
    `SELECT pr.prrelid, pg_get_expr(pr.prqual, pr.prrelid) AS qual
       FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
      WHERE p.pubname = $1`,
    [name],
  );
  const byOid = new Map(rows.map((r) => [r.prrelid, r.qual]));
  // Defense in depth: the publication holds exactly the tables asked for.
  const unexpected = rows.filter((r) => !tables.some((t) => t.oid === r.prrelid));
  if (unexpected.length > 0 || byOid.size !== tables.length) {
    throw new RowFilterError("the publication does not hold exactly the replicated tables");
  }
  return tables.map((table) => ({ table, where: byOid.get(table.oid) ?? null }));
}

export async function dropPublication(client: pg.ClientBase, name: string): Promise<void> {
  await client.query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(name)}`);
}

// The row filter AND NOT each Filter predicate (a NULL predicate keeps the row).
function rowExpression(table: string, rows: RowExpressions): string | undefined {
  const parts: string[] = [];
  if (rows.rowFilter) parts.push(`(${checkExpression(rows.rowFilter)})`);
  for (const drop of rows.drop.get(table) ?? []) parts.push(`((${checkExpression(drop)}) IS NOT TRUE)`);
  return parts.length > 0 ? parts.join(" AND ") : undefined;
}

/**
 * Refuses text that could end the WHERE clause it is placed in: unbalanced
 * parentheses or quotes, statement separators, comments, dollar quoting.
 * PostgreSQL then decides whether what remains is a valid row filter (it
 * refuses subqueries, volatile and user-defined functions).
 */
export function checkExpression(text: string): string {
  if (!text.trim()) throw new RowFilterError("the row filter expression is empty");
  let depth = 0;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) {
        if (text[i + 1] === quote) i++;
        else quote = null;
      } else if (c === "\\" && quote === "'") {
        throw new RowFilterError("backslashes inside string literals are not accepted in row filters");
      }
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === "(") depth++;
    else if (c === ")" && --depth < 0) throw new RowFilterError("the row filter closes a parenthesis it did not open");
    else if (c === ";") throw new RowFilterError("the row filter may not contain ';'");
    else if (c === "$") throw new RowFilterError("the row filter may not contain '$' (dollar quoting)");
    else if ((c === "-" && text[i + 1] === "-") || (c === "/" && text[i + 1] === "*")) {
      throw new RowFilterError("the row filter may not contain comments");
    }
  }
  if (quote) throw new RowFilterError("the row filter has an unterminated quote");
  if (depth !== 0) throw new RowFilterError("the row filter has unbalanced parentheses");
  return text;
}

export function qualified(t: { schema: string; table: string }): string {
  return `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.table)}`;
}
