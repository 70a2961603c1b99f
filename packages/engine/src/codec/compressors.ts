// The compression codec of each level. Measured on change batches (docs/engine.md,
// "Compression"): brotli at quality 1 compresses these batches as well as at
// quality 5 (better, once columns are hashed) at a tenth of the CPU; quality 4
// is the smallest of all qualities and still a third of quality 5's cost; lz4
// is the fastest by far, for links where CPU is scarcer than bandwidth. Node
// 20 has no zstd. All run on libuv's thread pool, off the event loop.
import { compress as lz4Compress, uncompress as lz4Uncompress } from "lz4-napi";
import { promisify } from "node:util";
import { brotliCompress, brotliDecompress, constants as zlib } from "node:zlib";

/** Compression levels, from fastest to smallest. */
export type CompressionLevel = "low" | "medium" | "high";

export interface Compressor {
  /** The byte that starts a payload it compressed: how open() knows the codec. */
  id: number;
  /** For docs and traces, e.g. "brotli q1". */
  name: string;
  compress(raw: Uint8Array): Promise<Buffer>;
  decompress(compressed: Uint8Array): Promise<Buffer>;
}

const brotliCompressAsync = promisify(brotliCompress);
const brotliDecompressAsync = promisify(brotliDecompress);

const BROTLI_ID = 1;
const LZ4_ID = 2;

function brotli(quality: number): Compressor {
  return {
    id: BROTLI_ID,
    name: `brotli q${quality}`,
    compress: (raw) =>
      brotliCompressAsync(raw, { params: { [zlib.BROTLI_PARAM_QUALITY]: quality, [zlib.BROTLI_PARAM_SIZE_HINT]: raw.length } }),
    decompress: (compressed) => brotliDecompressAsync(compressed),
  };
}

const lz4: Compressor = {
  id: LZ4_ID,
  name: "lz4",
  compress: (raw) => lz4Compress(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)),
  decompress: (compressed) => lz4Uncompress(Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength)),
};

/** The codec each compression level runs. */
export const COMPRESSION: Readonly<Record<CompressionLevel, Compressor>> = { low: lz4, medium: brotli(1), high: brotli(4) };

/** The codec a payload's first byte names (any brotli quality opens with the same decoder). */
export function codecById(id: number | undefined): Pick<Compressor, "decompress"> | undefined {
  if (id === BROTLI_ID) return COMPRESSION.medium;
  if (id === LZ4_ID) return lz4;
  return undefined;
}
