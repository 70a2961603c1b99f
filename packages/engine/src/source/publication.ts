// The publication that tells PostgreSQL what to decode for a replication:
// which tables, which columns (table_filter) and which rows (row_filter and
// Filter transforms). PostgreSQL validates the row expressions itself; the
// engine only makes sure a user's text cannot leave its WHERE clause.
import { randomBytes } from "node:crypto";
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
 * What ensurePublication changed. Tables in `resync` were added or had their
 * row filter or column list changed: changes of transactions in flight
 * across the change may have been decoded under either definition, so their
 * rows must be copied again under a snapshot taken after it.
 */
export interface PublicationChange {
  created: boolean;
  resync: CatalogTable[];
  /** Source oids of tables the publication no longer holds. */
  removed: number[];
}

/**
 * Makes the publication publish exactly `tables` with their row expressions,
 * never dropping and re-creating it: a slot decodes every transaction with
 * the catalog as of that transaction, and a publication re-created under a
 * new oid silently stops publishing changes of transactions in flight across
 * the re-creation (docs/engine.md, "Changing what is published"). A missing
 * publication is created; an existing one is changed in place with ALTER
 * PUBLICATION … SET TABLE, which keeps the catalog entries of unchanged
 * tables as they are; an unchanged one is not touched at all (the trial
 * change is rolled back). Before committing a change it checks that the
 * source will still accept UPDATE and DELETE on every table (a row filter on
 * a column outside the replica identity would make PostgreSQL refuse them),
 * and calls `beforeCommit`, so that the caller records what must be copied
 * again before the change can be seen.
 */
export async function ensurePublication(
  client: pg.ClientBase,
  name: string,
  tables: CatalogTable[],
  rows: RowExpressions,
  serverVersion: number,
  beforeCommit: (change: PublicationChange) => Promise<void> = async () => undefined,
): Promise<{ published: PublishedTable[]; change: PublicationChange }> {
  const items = tables.map((t) => publishedItem(t, rows, serverVersion));
  const publication = pg.escapeIdentifier(name);
  await client.query("BEGIN");
  try {
    // ALTER PUBLICATION waits for a lock on each table: a long ALTER TABLE on the source fails this attempt (retried later) instead of holding it.
    await client.query("SET LOCAL lock_timeout = '10s'");
    const before = await publishedRelations(client, name);
    // The extended protocol runs exactly one statement: no `;` in a row filter can add another.
    const run = (text: string) => client.query({ text, queryMode: "extended" } as pg.QueryConfig);
    if (!before) {
      await run(`CREATE PUBLICATION ${publication}${items.length > 0 ? ` FOR TABLE ${items.join(", ")}` : ""}`);
    } else if (items.length > 0) {
      await run(`ALTER PUBLICATION ${publication} SET TABLE ${items.join(", ")}`);
    } else if (before.size > 0) {
      await run(`ALTER PUBLICATION ${publication} DROP TABLE ${[...before.values()].map((r) => r.qualified).join(", ")}`);
    }
    const after = (await publishedRelations(client, name))!;
    // SET TABLE re-creates the entry (a new pg_publication_rel oid) of a table it adds or changes.
    const change: PublicationChange = {
      created: !before,
      // A new publication: every table (a first start copies them all anyway).
      resync: before ? tables.filter((t) => before.get(t.oid)?.entry !== after.get(t.oid)?.entry) : tables,
      removed: before ? [...before.keys()].filter((oid) => !after.has(oid)) : [],
    };
    const published = publishedTables(after, tables);
    if (before && change.resync.length === 0 && change.removed.length === 0) {
      await client.query("ROLLBACK");
      return { published, change };
    }
    for (const t of tables) await checkWritesAccepted(client, t);
    await beforeCommit(change);
    await client.query("COMMIT");
    return { published, change };
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw refusal(e);
  }
}

/**
 * Asks PostgreSQL whether it would accept the publication, without keeping
 * anything: the row filters and column lists are created under a name of
 * their own and the source's acceptance of UPDATE and DELETE is checked, in
 * a transaction that is rolled back. Throws RowFilterError with PostgreSQL's
 * verdict. Tables without a row filter or column list need no check.
 */
export async function checkPublication(client: pg.ClientBase, tables: CatalogTable[], rows: RowExpressions, serverVersion: number): Promise<void> {
  const items = tables.map((t) => publishedItem(t, rows, serverVersion));
  if (!items.some((item, i) => item !== qualified(tables[i]!))) return;
  await client.query("BEGIN");
  try {
    await client.query("SET LOCAL lock_timeout = '10s'");
    const name = pg.escapeIdentifier(`heliosdb_check_${randomBytes(8).toString("hex")}`);
    await client.query({ text: `CREATE PUBLICATION ${name} FOR TABLE ${items.join(", ")}`, queryMode: "extended" } as pg.QueryConfig);
    for (const t of tables) await checkWritesAccepted(client, t);
  } catch (e) {
    throw refusal(e);
  } finally {
    await client.query("ROLLBACK").catch(() => undefined);
  }
}

// PostgreSQL's refusal of a publication as a RowFilterError; anything else
// (a connection lost, a server shutting down, a lock not granted in time, a
// deadlock, the caller's own failure) as it is.
function refusal(e: unknown): unknown {
  if (e instanceof RowFilterError) return e;
  if (!(e instanceof pg.DatabaseError) || /^(08|40|53|57|58|55P03|55006)/.test(e.code ?? "")) return e;
  const detail = e.detail ? ` (${e.detail})` : "";
  // UPDATE and DELETE only carry the replica identity's old values, which a filter must be able to read.
  const hint = /replica identity/.test(e.detail ?? "")
    ? "; filters and column lists can only use replica-identity columns: ALTER TABLE ... REPLICA IDENTITY FULL lets them use any column"
    : "";
  return new RowFilterError(`the source refused the publication: ${e.message}${detail}${hint}`);
}

// One table as CREATE/ALTER PUBLICATION lists it.
function publishedItem(t: CatalogTable, rows: RowExpressions, serverVersion: number): string {
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
}

// PostgreSQL refuses UPDATE and DELETE on a published table whose row filter
// or column list reads columns outside the replica identity: plan both.
async function checkWritesAccepted(client: pg.ClientBase, t: CatalogTable): Promise<void> {
  const first = pg.escapeIdentifier(t.columns[0]!.name);
  await client.query(`EXPLAIN UPDATE ${qualified(t)} SET ${first} = ${first} WHERE false`);
  await client.query(`EXPLAIN DELETE FROM ${qualified(t)} WHERE false`);
}

interface PublishedRelation {
  /** The pg_publication_rel row's oid: it changes when the entry is re-created. */
  entry: number;
  qualified: string;
  where: string | null;
}

// The publication's tables by source oid, or undefined when it does not exist.
async function publishedRelations(client: pg.ClientBase, name: string): Promise<Map<number, PublishedRelation> | undefined> {
  const { rows } = await client.query<{ pubid: number; entry: number | null; relid: number | null; qualified: string | null; qual: string | null }>(
    `SELECT p.oid AS pubid, pr.oid AS entry, pr.prrelid AS relid, pr.prrelid::regclass::text AS qualified,
            pg_get_expr(pr.prqual, pr.prrelid) AS qual
       FROM pg_publication p LEFT JOIN pg_publication_rel pr ON pr.prpubid = p.oid
      WHERE p.pubname = $1`,
    [name],
  );
  if (rows.length === 0) return undefined;
  return new Map(rows.filter((r) => r.relid !== null).map((r) => [r.relid!, { entry: r.entry!, qualified: r.qualified!, where: r.qual }]));
}

// Defense in depth: the publication holds exactly the tables asked for.
function publishedTables(relations: Map<number, PublishedRelation>, tables: CatalogTable[]): PublishedTable[] {
  if (relations.size !== tables.length || tables.some((t) => !relations.has(t.oid))) {
    throw new RowFilterError("the publication does not hold exactly the replicated tables");
  }
  return tables.map((table) => ({ table, where: relations.get(table.oid)!.where }));
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
