// table_filter: globs of `table.column` within the replication's schema
// ("users.*", "*.*", "users.email"). A pattern without a dot names a whole
// table. Key columns are always kept: without them no row can be applied.
import type { CatalogTable } from "./catalog";

interface Pattern {
  text: string;
  table: Glob;
  column: Glob;
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
  return { text, table: new Glob(table), column: new Glob(column) };
}

/**
 * `*` any run of characters, `?` one character, everything else literal.
 * Matched without backtracking: the pattern is split at its stars into
 * pieces; the first must start the name, the last must end it, and each
 * piece between is taken at its leftmost place after the one before (the
 * leftmost place never loses a match). A regular expression would backtrack:
 * a pattern of many stars against a long name took seconds.
 */
export class Glob {
  private readonly pieces: string[];

  constructor(pattern: string) {
    this.pieces = pattern.split("*");
  }

  test(name: string): boolean {
    const pieces = this.pieces;
    const first = pieces[0]!;
    if (pieces.length === 1) return name.length === first.length && matchesAt(name, 0, first);
    const last = pieces[pieces.length - 1]!;
    if (first.length + last.length > name.length) return false;
    if (!matchesAt(name, 0, first) || !matchesAt(name, name.length - last.length, last)) return false;
    let at = first.length;
    const end = name.length - last.length;
    for (let i = 1; i < pieces.length - 1; i++) {
      const piece = pieces[i]!;
      let found = -1;
      for (let start = at; start + piece.length <= end; start++) {
        if (matchesAt(name, start, piece)) {
          found = start;
          break;
        }
      }
      if (found < 0) return false;
      at = found + piece.length;
    }
    return true;
  }
}

// Whether `piece` (with `?` for any one character) stands in `name` at `at`.
function matchesAt(name: string, at: number, piece: string): boolean {
  for (let i = 0; i < piece.length; i++) {
    const p = piece.charCodeAt(i);
    if (p !== 63 /* ? */ && p !== name.charCodeAt(at + i)) return false;
  }
  return true;
}
