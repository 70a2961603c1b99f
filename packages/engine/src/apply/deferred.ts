// Statements whose answer the applier does not read (BEGIN, SAVEPOINT,
// RELEASE, a staging table's TRUNCATE), held back and sent in front of the
// next statement as one simple-query string: one round trip for all of them.
// A target round trip costs a socket write and a wake-up of the target's
// backend on each side; a batch of a few small transactions used to take
// seven, most of them for statements like these.
//
// PostgreSQL runs a multi-statement string in order and stops at the first
// error, so a held statement fails (or takes effect) exactly where it would
// have alone. The string may end with COPY FROM STDIN: the server answers the
// statements before it, then asks for the data. Only statements without
// parameters can travel this way; a query with parameters takes the held
// ones first (take()).
import type pg from "pg";

export class Deferred {
  private held: string[] = [];

  /**
   * Sends the held statements and `sql` (no parameters) in one round trip;
   * resolves `sql`'s result (pg answers a string of several with a list).
   */
  async query(client: pg.ClientBase, sql: string, rowMode?: "array"): Promise<pg.QueryResult> {
    const result = (await client.query({ text: this.before(sql), ...(rowMode ? { rowMode } : {}) })) as pg.QueryResult | pg.QueryResult[];
    return Array.isArray(result) ? result[result.length - 1]! : result;
  }

  /** Holds a statement for the next query. */
  add(sql: string): void {
    this.held.push(sql);
  }

  /** `sql` with the held statements in front; nothing is held after. */
  before(sql: string): string {
    if (this.held.length === 0) return sql;
    const text = `${this.held.join(";\n")};\n${sql}`;
    this.held = [];
    return text;
  }

  /** The held statements as one string ("" for none), to send alone before a query with parameters. */
  take(): string {
    const text = this.held.join(";\n");
    this.held = [];
    return text;
  }

  /** Forgets the held statements (their transaction is rolled back). */
  clear(): void {
    this.held = [];
  }
}
