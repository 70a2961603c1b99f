// What the transforms need to know about a column's type: which family it is
// in (to pick a mask or a generalization that PostgreSQL will accept back)
// and its length or precision limits (so the output still fits).
import type { Column } from "../types";

export type TypeKind =
  | "text" // text, varchar, char, name, citext
  | "int2"
  | "int4"
  | "int8"
  | "numeric"
  | "float4"
  | "float8"
  | "bool"
  | "date"
  | "timestamp"
  | "timestamptz"
  | "time"
  | "timetz"
  | "uuid"
  | "json"
  | "jsonb"
  | "bytea"
  | "inet"
  | "cidr"
  | "other"; // arrays, domains, enums, ranges, extension types: only hash/tokenize/compress

export interface TypeInfo {
  kind: TypeKind;
  /** The character limit of varchar(n) / char(n), when the type has one. */
  maxLength?: number;
  /** numeric(p, s) limits, when the type has them. */
  precision?: number;
  scale?: number;
}

/** The OIDs the output type of a transform takes. */
export const TEXT_OID = 25;
export const BYTEA_OID = 17;

// Built-in type OIDs are fixed in every PostgreSQL release (pg_type.dat), so
// they identify a type more reliably than its printed name. The name is the
// fallback for types known only by name (citext is an extension: its OID
// varies) and for callers that do not fill typeOid.
const KIND_BY_OID = new Map<number, TypeKind>([
  [25, "text"], [1043, "text"], [1042, "text"], [19, "text"],
  [21, "int2"], [23, "int4"], [20, "int8"],
  [1700, "numeric"], [700, "float4"], [701, "float8"],
  [16, "bool"], [1082, "date"], [1114, "timestamp"], [1184, "timestamptz"],
  [1083, "time"], [1266, "timetz"], [2950, "uuid"], [114, "json"], [3802, "jsonb"],
  [17, "bytea"], [869, "inet"], [650, "cidr"],
]);

const KIND_BY_NAME: Record<string, TypeKind> = {
  text: "text", "character varying": "text", varchar: "text", character: "text", char: "text",
  bpchar: "text", name: "text", citext: "text",
  smallint: "int2", int2: "int2", integer: "int4", int: "int4", int4: "int4", bigint: "int8", int8: "int8",
  numeric: "numeric", decimal: "numeric", real: "float4", float4: "float4",
  "double precision": "float8", float8: "float8",
  boolean: "bool", bool: "bool", date: "date",
  "timestamp without time zone": "timestamp", timestamp: "timestamp",
  "timestamp with time zone": "timestamptz", timestamptz: "timestamptz",
  "time without time zone": "time", time: "time", "time with time zone": "timetz", timetz: "timetz",
  uuid: "uuid", json: "json", jsonb: "jsonb", bytea: "bytea", inet: "inet", cidr: "cidr",
};

/** Classifies a column's type from its OID and its `format_type` name. */
export function typeInfo(column: Pick<Column, "typeOid" | "typeName">): TypeInfo {
  const name = column.typeName.trim().toLowerCase().replace(/^pg_catalog\./, "");
  // Arrays print as "integer[]"; their element type must not decide the kind.
  if (name.endsWith("]")) return { kind: "other" };
  // "timestamp(3) with time zone" → "timestamp with time zone"; the typmod is kept apart.
  const typmod = /\(([^)]*)\)/.exec(name)?.[1];
  const base = name.replace(/\s*\([^)]*\)/, "").replace(/\s+/g, " ");
  const kind = KIND_BY_OID.get(column.typeOid) ?? KIND_BY_NAME[base] ?? "other";
  const info: TypeInfo = { kind };
  if (kind === "text" && typmod !== undefined) {
    const n = Number.parseInt(typmod, 10);
    if (Number.isInteger(n) && n > 0) info.maxLength = n;
  } else if (kind === "text" && (base === "character" || base === "char")) {
    // A bare "character" is char(1); format_type prints a length-less bpchar as "bpchar".
    info.maxLength = 1;
  }
  if (kind === "numeric" && typmod !== undefined) {
    const [p, s] = typmod.split(",").map((part) => Number.parseInt(part, 10));
    if (p !== undefined && Number.isInteger(p)) {
      info.precision = p;
      info.scale = s !== undefined && Number.isInteger(s) ? s : 0;
    }
  }
  return info;
}

