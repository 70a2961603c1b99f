// CompressColumns: a large text value stored brotli-compressed in a bytea
// column on the target. The output is bytea's hex text form ("\x…"), which
// both COPY text input and a text-format query parameter accept as bytea.
import { brotliCompressSync, brotliDecompressSync, constants } from "node:zlib";
import { BYTEA_OID } from "./pg-types";

// Quality 5 rather than brotli's default 11: this runs inline on the
// replication path, where 11 costs tens of times more CPU for a few percent
// smaller output. Text mode tunes the encoder for UTF-8 input.
const BROTLI_OPTIONS = (size: number) => ({
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 5,
    [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    [constants.BROTLI_PARAM_SIZE_HINT]: size,
  },
});

/** The target column type of a compressed column. */
export const COMPRESSED_TYPE = { typeName: "bytea", typeOid: BYTEA_OID } as const;

/** Compresses a value's UTF-8 bytes to bytea hex text: "\x" followed by hex digits. */
export function compressValue(value: string): string {
  const input = Buffer.from(value, "utf8");
  return `\\x${brotliCompressSync(input, BROTLI_OPTIONS(input.length)).toString("hex")}`;
}

/**
 * The original text of a compressed column. Accepts what a client reads back:
 * the bytea as a Buffer (node-postgres parses bytea) or as hex text ("\x…").
 */
export function decompressValue(compressed: Buffer | Uint8Array | string): string {
  let bytes: Buffer;
  if (typeof compressed === "string") {
    if (!/^\\x([0-9a-fA-F]{2})*$/.test(compressed)) throw new Error('expected bytea hex text ("\\x…")');
    bytes = Buffer.from(compressed.slice(2), "hex");
  } else {
    bytes = Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength);
  }
  return brotliDecompressSync(bytes).toString("utf8");
}
