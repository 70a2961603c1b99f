// HMAC-SHA-256 of up to four values at once, in WebAssembly SIMD
// (sha256-simd.ts): one pass of the rounds hashes four values for about the
// cost of 1.4 passes of the scalar code (hmac-sha256.ts). The Hash
// anonymizer hashes a row's hashed columns together. The module is
// instantiated at first use; a platform without WebAssembly SIMD gets the
// scalar path.
import { BLOCKS, INNER, LANES, MASKS, MAX_BLOCKS, MAX_LANE_BYTES, OUT, OUTER, OUTER_BLOCK, moduleBytes } from "./sha256-simd";

export { LANES, MAX_LANE_BYTES } from "./sha256-simd";

interface Lanes {
  words: Int32Array;
  hmac: (blocks: number) => void;
}

let lanes: Lanes | null | undefined;

/** The module's instance for this thread, or null where WebAssembly SIMD is unavailable. */
function instance(): Lanes | null {
  if (lanes !== undefined) return lanes;
  lanes = null;
  const bytes = moduleBytes();
  if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return lanes;
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as {
    memory: WebAssembly.Memory;
    hmac: (blocks: number) => void;
  };
  const words = new Int32Array(exports.memory.buffer);
  for (let j = 0; j < LANES; j++) {
    words[(OUTER_BLOCK + 16 * 8) / 4 + j] = 0x80000000 | 0; // the padding's 1 bit after the 32-byte digest
    words[(OUTER_BLOCK + 16 * 15) / 4 + j] = (64 + 32) * 8; // bit length: opad block + digest
    words[(MASKS + 16 * MAX_BLOCKS) / 4 + j] = -1;
  }
  lanes = { words, hmac: exports.hmac };
  return lanes;
}

/** Whether this platform runs the lanes (WebAssembly SIMD). */
export function lanesAvailable(): boolean {
  return instance() !== null;
}

// Each byte's two hex digits as one number (high digit's code << 8 | low digit's): one lookup per byte, not per digit.
const HEX_PAIRS = Uint16Array.from({ length: 256 }, (_, b) => ("0123456789abcdef".charCodeAt(b >> 4) << 8) | "0123456789abcdef".charCodeAt(b & 15));

/** Writes the 8 hex digits of the 32-bit word `w` at `out[at]`; returns the offset after them. */
export function hexWordInto(w: number, out: Uint8Array, at: number): number {
  for (let shift = 24; shift >= 0; shift -= 8) {
    const pair = HEX_PAIRS[(w >>> shift) & 255]!;
    out[at++] = pair >> 8;
    out[at++] = pair & 255;
  }
  return at;
}

const blockCounts = new Int32Array(LANES);
// The key whose states INNER and OUTER hold.
let loaded: Int32Array | undefined;

/**
 * Writes the 64 hex digits of the HMAC of `src[from[j], to[j])` at
 * `out[at[j]]` for each lane j < count (at most LANES), under the key whose
 * ipad and opad states are `inner` and `outer`. Returns false, having written
 * nothing, when the lanes are unavailable or a value is longer than
 * MAX_LANE_BYTES: the caller hashes those values itself.
 */
export function hmacLanes(
  inner: Int32Array,
  outer: Int32Array,
  src: Uint8Array,
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  count: number,
  out: Uint8Array,
  at: ArrayLike<number>,
): boolean {
  const m = instance();
  if (!m || count > LANES) return false;
  let blocks = 0;
  for (let j = 0; j < count; j++) {
    const length = to[j]! - from[j]!;
    if (length > MAX_LANE_BYTES) return false;
    const n = (length + 9 + 63) >> 6;
    blockCounts[j] = n;
    if (n > blocks) blocks = n;
  }
  const words = m.words;
  if (loaded !== inner) {
    words.set(inner, INNER / 4);
    words.set(outer, OUTER / 4);
    loaded = inner;
  }
  for (let j = 0; j < LANES; j++) {
    const n = j < count ? blockCounts[j]! : 0;
    for (let k = 0; k < blocks; k++) words[MASKS / 4 + 4 * k + j] = k < n ? -1 : 0;
    if (j < count) laneWords(words, j, n, src, from[j]!, to[j]!);
  }
  m.hmac(blocks);
  for (let j = 0; j < count; j++) {
    let o = at[j]!;
    for (let i = 0; i < 8; i++) o = hexWordInto(words[OUT / 4 + 4 * i + j]!, out, o);
  }
  return true;
}

// Writes every word of lane j's `n` padded blocks: the value big-endian, its
// 0x80 byte, zeros, and the bit length of ipad block + value in the last word
// (values are far below 2^29 bytes, so the word before it is zero).
function laneWords(words: Int32Array, j: number, n: number, src: Uint8Array, from: number, to: number): void {
  const length = to - from;
  const last = 16 * n - 1;
  const base = BLOCKS / 4 + j;
  // Word i of the lane is at base + 64 · (i / 16) + 4 · (i % 16).
  const whole = length >> 2;
  let p = from;
  let i = 0;
  for (; i < whole; i++, p += 4) words[base + ((i >> 4) << 6) + ((i & 15) << 2)] = (src[p]! << 24) | (src[p + 1]! << 16) | (src[p + 2]! << 8) | src[p + 3]!;
  const rest = length & 3;
  let w = 0;
  for (let b = 0; b < rest; b++) w = (w << 8) | src[p + b]!;
  words[base + ((i >> 4) << 6) + ((i & 15) << 2)] = ((w << 8) | 0x80) << (8 * (3 - rest));
  for (i++; i < last; i++) words[base + ((i >> 4) << 6) + ((i & 15) << 2)] = 0;
  words[base + ((last >> 4) << 6) + ((last & 15) << 2)] = (64 + length) * 8;
}
