// table_filter: globs of `table.column` within the replication's schema
// ("users.*", "*.*", "users.email"). A pattern without a dot names a whole
// table. Key columns are always kept: without them no row can be applied.
import type { CatalogTable } from "./catalog";

interface Pattern {
  text: string;
  table: RegExp;
  column: RegExp;
}

/** The tables a filter selects, each with only the columns it selects. */
export function applyTableFilter(tables: CatalogTable[], filter: readonly string[]): CatalogTable[] {
  if (filter.length === 0) return tables;
  const patterns = filter.map(parse);
  const selected: CatalogTable[] = [];
  for (const t of tables) {
    const matching = patterns.filter((p) => p.table.test(t.table));
    if (matching.length === 0) continue;
    const columns = t.columns.filter((c) => c.isKey || matching.some((p) => p.column.test(c.name)));
    selected.push({ ...t, columns, columnsFiltered: columns.length < t.columns.length });
  }
  return selected;
}

/** Patterns that match no column of any table: almost always a typo worth refusing. */
export function unmatchedPatterns(tables: CatalogTable[], filter: readonly string[]): string[] {
  return filter
    .map(parse)
    .filter((p) => !tables.some((t) => p.table.test(t.table) && t.columns.some((c) => p.column.test(c.name))))
    .map((p) => p.text);
}

function parse(text: string): Pattern {
  const dot = text.indexOf(".");
  const [table, column] = dot < 0 ? [text, "*"] : [text.slice(0, dot), text.slice(dot + 1)];
  return { text, table: glob(table), column: glob(column) };
}

// `*` any run of characters, `?` one character; everything else literal.
function glob(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}
