// The compression codec of each level. Measured on change batches (docs/engine.md,
// "Compression"): zstd at level 1 compresses them better than brotli at
// quality 1 (and than quality 5, once columns are hashed) at half brotli
// q1's CPU to compress and two thirds to decompress; brotli at quality 4 is
// the smallest of all on plain rows, for links where bandwidth is scarcer
// than CPU; lz4 is the cheapest to open, for the opposite. Node 20 has no
// zstd of its own: `@toondepauw/node-zstd` binds the zstd library (napi-rs,
// a prebuilt binary per platform, no install script).
//
// Where it runs: a small payload on the calling thread, a large one on libuv's
// thread pool, off the event loop. A trip to the pool costs more than
// compressing a small batch: measured on this project's 2-core host, a
// 50-row batch (7 kB) took 0.32 ms of CPU to compress and decompress there
// with brotli against 0.06 ms on the thread (lz4: 0.19 against 0.03), and a
// 1,000-row one (150 kB) 2.0 ms against 0.8 ms. From about 0.5 MB the two
// cost the same and the pool keeps the event loop free. On the pool, one
// output buffer holds the whole result: zlib's default 16 kB chunks made a
// trip per chunk (a 1.6 MB batch took 16 ms instead of 12).
import { compress as lz4Compress, compressSync as lz4CompressSync, uncompress as lz4Uncompress, uncompressSync as lz4UncompressSync } from "lz4-napi";
import { Decoder as ZstdDecoder, Encoder as ZstdEncoder } from "@toondepauw/node-zstd";
import { promisify } from "node:util";
import { brotliCompress, brotliCompressSync, brotliDecompress, brotliDecompressSync, constants as zlib } from "node:zlib";

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

/** Payloads below this many bytes (raw to compress, compressed to decompress) are handled on the calling thread. */
export const ON_THREAD_BYTES = 256 * 1024;
/** Compressed payloads below this are opened on the calling thread (the codecs shrink batches 1.4 to 4.7 times). */
const ON_THREAD_COMPRESSED_BYTES = ON_THREAD_BYTES / 4;
const MAX_CHUNK = 16 * 2 ** 20;

const brotliCompressAsync = promisify(brotliCompress);
const brotliDecompressAsync = promisify(brotliDecompress);

const BROTLI_ID = 1;
const LZ4_ID = 2;
const ZSTD_ID = 3;

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

// Where a payload is handled: below `bound` bytes on the calling thread, from there on libuv's pool (see above).
function placed(bound: number, onThread: (bytes: Buffer) => Buffer, onPool: (bytes: Buffer) => Promise<Buffer>): (bytes: Uint8Array) => Promise<Buffer> {
  return async (bytes) => (bytes.length < bound ? onThread(asBuffer(bytes)) : onPool(asBuffer(bytes)));
}

function brotli(quality: number): Compressor {
  const params = (raw: Buffer) => ({ [zlib.BROTLI_PARAM_QUALITY]: quality, [zlib.BROTLI_PARAM_SIZE_HINT]: raw.length });
  return {
    id: BROTLI_ID,
    name: `brotli q${quality}`,
    compress: placed(
      ON_THREAD_BYTES,
      (raw) => brotliCompressSync(raw, { params: params(raw) }),
      // The output is smaller than the input, in all but pathological cases: one chunk.
      (raw) => brotliCompressAsync(raw, { params: params(raw), chunkSize: Math.min(raw.length + 1024, MAX_CHUNK) }),
    ),
    decompress: placed(
      ON_THREAD_COMPRESSED_BYTES,
      (compressed) => brotliDecompressSync(compressed),
      (compressed) => brotliDecompressAsync(compressed, { chunkSize: Math.min(compressed.length * 8, MAX_CHUNK) }),
    ),
  };
}

const lz4: Compressor = {
  id: LZ4_ID,
  name: "lz4",
  compress: placed(ON_THREAD_BYTES, lz4CompressSync, lz4Compress),
  decompress: placed(ON_THREAD_COMPRESSED_BYTES, lz4UncompressSync, lz4Uncompress),
};

// One encoder per level and one decoder: they hold only their settings, so every batch can share them.
function zstd(level: number): Compressor {
  const encoder = new ZstdEncoder(level);
  const decoder = new ZstdDecoder();
  return {
    id: ZSTD_ID,
    name: `zstd ${level}`,
    compress: placed(ON_THREAD_BYTES, (raw) => encoder.encodeSync(raw), (raw) => encoder.encode(raw)),
    decompress: placed(ON_THREAD_COMPRESSED_BYTES, (compressed) => decoder.decodeSync(compressed), (compressed) => decoder.decode(compressed)),
  };
}

const BROTLI_Q4 = brotli(4);
const ZSTD_1 = zstd(1);

/** The codec each compression level runs. */
export const COMPRESSION: Readonly<Record<CompressionLevel, Compressor>> = { low: lz4, medium: ZSTD_1, high: BROTLI_Q4 };

/**
 * The codec a payload's first byte names: any brotli quality opens with the
 * same decoder, and any zstd level with the other. (Sealed batches never
 * outlive the process that sealed them: Medium's move from brotli q1 to zstd
 * needed no reader for the old batches, but brotli's stays for High.)
 */
export function codecById(id: number | undefined): Pick<Compressor, "decompress"> | undefined {
  if (id === BROTLI_ID) return BROTLI_Q4;
  if (id === LZ4_ID) return lz4;
  if (id === ZSTD_ID) return ZSTD_1;
  return undefined;
}
