// PostgreSQL's COPY text format: one row per line, columns separated by tabs,
// \N for NULL, backslash escapes inside values. The snapshot parses rows only
// for tables with row transforms; other tables stream through untouched.
import type { ColumnValue } from "../types";

const UNESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\v": "\\v" };
const NEEDS_ESCAPE = /[\\\n\r\t\b\f\v]/;

/** One COPY text line (without its newline) as column values. */
export function parseCopyLine(line: string): ColumnValue[] {
  return line.split("\t").map((field) => (field === "\\N" ? null : field.includes("\\") ? unescapeField(field) : field));
}

/** Column values as one COPY text line, with its newline. */
export function formatCopyLine(values: readonly ColumnValue[]): string {
  // A plain loop: this runs for every row the engine writes.
  let line = "";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) line += "\t";
    line += typeof v === "string" ? escapeField(v) : "\\N";
  }
  return `${line}\n`;
}

/** A COPY text field's value: backslash sequences resolved. */
export function unescapeField(field: string): string {
  return field.replace(/\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)/g, (_, seq: string) => {
    if (seq[0] === "x") return String.fromCharCode(parseInt(seq.slice(1), 16));
    if (/^[0-7]/.test(seq)) return String.fromCharCode(parseInt(seq, 8));
    return UNESCAPES[seq] ?? seq;
  });
}

/** A value as a COPY text field. */
export function escapeField(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\\\n\r\t\b\f\v]/g, (c) => ESCAPES[c]!) : value;
}
