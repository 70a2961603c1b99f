// Conflict events name the row by its key, as text. Under binary transfer a
// key value is its type's binary form: the key types people use are turned
// back into their text here, anything else is shown as bytea's hex.
import type { WireValue } from "../source/wire-row";
import type { Column } from "../types";

const TEXT_TYPES = new Set([25, 1043, 1042, 19]); // text, varchar, bpchar, name

/** A key value as text, or null. */
export function keyText(column: Column, value: WireValue | undefined): string | null {
  if (typeof value === "string") return value;
  if (!Buffer.isBuffer(value)) return null;
  switch (column.typeOid) {
    case 20: // int8
      return value.length === 8 ? value.readBigInt64BE().toString() : hex(value);
    case 23: // int4
      return value.length === 4 ? String(value.readInt32BE()) : hex(value);
    case 21: // int2
      return value.length === 2 ? String(value.readInt16BE()) : hex(value);
    case 26: // oid
      return value.length === 4 ? String(value.readUInt32BE()) : hex(value);
    case 16: // bool
      return value.length === 1 ? (value[0] ? "t" : "f") : hex(value);
    case 2950: {
      // uuid: 16 bytes, written 8-4-4-4-12
      if (value.length !== 16) return hex(value);
      const h = value.toString("hex");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    default:
      return TEXT_TYPES.has(column.typeOid) ? value.toString("utf8") : hex(value);
  }
}

function hex(value: Buffer): string {
  return `\\x${value.toString("hex")}`;
}
