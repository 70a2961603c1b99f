// HMAC-SHA-256 for the Hash anonymizer, in JavaScript. node:crypto's
// createHmac costs about 3 µs per call for a short value — a new object and
// three crossings into C++ — while the two SHA-256 blocks an HMAC of a short
// value needs take under 1 µs here. With the key's inner and outer blocks
// absorbed once per key (as RFC 2104 allows), hashing a column's value
// costs two blocks, read straight from the row's bytes and written as hex
// straight into the output row. Several values under one key (a row's
// hashed columns) are hashed together in WebAssembly SIMD lanes where the
// platform has them (sha256-lanes.ts). Checked against node:crypto in its tests.
import { LANES, hexWordInto, hmacLanes } from "./sha256-lanes";
import { ROUND_CONSTANTS } from "./sha256-simd";

const K = Int32Array.from(ROUND_CONSTANTS);
const IV = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
const BLOCK = 64;

// The message schedule, shared: nothing here is re-entered.
const W = new Int32Array(64);

/** SHA-256's compression of the 64-byte block at `bytes[at]` into `state`. */
function compress(state: Int32Array, bytes: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++, at += 4) W[i] = (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15]!;
    const y = W[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!, e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/** HMAC-SHA-256 under one key. */
export class HmacSha256 {
  /** The state after the key's inner (ipad) and outer (opad) blocks. */
  private readonly inner = new Int32Array(IV);
  private readonly outer = new Int32Array(IV);
  private readonly state = new Int32Array(8);
  private readonly tail = new Uint8Array(2 * BLOCK);
  private text = new Uint8Array(256);

  constructor(key: Uint8Array) {
    // Keys longer than a block would be hashed first; the engine's keys are 32 bytes.
    if (key.length > BLOCK) throw new RangeError(`an HMAC key of ${key.length} bytes; at most ${BLOCK}`);
    const pad = new Uint8Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) pad[i] = (key[i] ?? 0) ^ 0x36;
    compress(this.inner, pad, 0);
    for (let i = 0; i < BLOCK; i++) pad[i] = (key[i] ?? 0) ^ 0x5c;
    compress(this.outer, pad, 0);
  }

  /** Writes the 64 hex digits of the HMAC of `bytes[from, to)` at `out[at]`. */
  hexInto(bytes: Uint8Array, from: number, to: number, out: Uint8Array, at: number): void {
    const state = this.state;
    const tail = this.tail;
    const length = to - from;
    state.set(this.inner);
    let p = from;
    for (; p + BLOCK <= to; p += BLOCK) compress(state, bytes, p);
    // The rest, 0x80, zeros and the bit length of ipad block + message: one or two blocks.
    const rest = to - p;
    for (let i = 0; i < rest; i++) tail[i] = bytes[p + i]!;
    const blocks = rest + 9 <= BLOCK ? 1 : 2;
    tail.fill(0, rest, blocks * BLOCK);
    tail[rest] = 0x80;
    lengthInto(tail, blocks * BLOCK, BLOCK + length);
    compress(state, tail, 0);
    if (blocks === 2) compress(state, tail, BLOCK);
    // The outer hash: opad block + the inner digest (32 bytes), one block.
    for (let i = 0; i < 8; i++) {
      const w = state[i]!;
      tail[4 * i] = w >>> 24;
      tail[4 * i + 1] = w >>> 16;
      tail[4 * i + 2] = w >>> 8;
      tail[4 * i + 3] = w;
    }
    tail.fill(0, 32, BLOCK);
    tail[32] = 0x80;
    lengthInto(tail, BLOCK, BLOCK + 32);
    state.set(this.outer);
    compress(state, tail, 0);
    for (let i = 0; i < 8; i++) at = hexWordInto(state[i]!, out, at);
  }

  /** Values `writeLanes` hashes in one pass. */
  readonly width = LANES;

  /**
   * hexInto for `count` (at most `width`) values at once: the HMAC of
   * `src[from[j], to[j])` at `out[at[j]]`. In SIMD lanes where available;
   * otherwise, or for a value too long for the lanes, one at a time.
   */
  writeLanes(src: Uint8Array, from: ArrayLike<number>, to: ArrayLike<number>, count: number, out: Uint8Array, at: ArrayLike<number>): void {
    if (count > 1 && hmacLanes(this.inner, this.outer, src, from, to, count, out, at)) return;
    for (let j = 0; j < count; j++) this.hexInto(src, from[j]!, to[j]!, out, at[j]!);
  }

  /** The HMAC of a string's UTF-8 bytes, as 64 hex digits. */
  hex(value: string): string {
    if (this.text.length < 3 * value.length + BLOCK) this.text = new Uint8Array(2 * (3 * value.length + BLOCK));
    const { written } = ENCODER.encodeInto(value, this.text);
    this.hexInto(this.text, 0, written, this.text, written);
    return LATIN1.decode(this.text.subarray(written, written + 64));
  }
}

const ENCODER = new TextEncoder();
const LATIN1 = new TextDecoder("latin1");

/** The message's bit length, big-endian, in the last 8 bytes before `end`. */
function lengthInto(block: Uint8Array, end: number, bytes: number): void {
  const bits = bytes * 8;
  const high = Math.floor(bits / 2 ** 32);
  block[end - 8] = high >>> 24;
  block[end - 7] = high >>> 16;
  block[end - 6] = high >>> 8;
  block[end - 5] = high;
  block[end - 4] = bits >>> 24;
  block[end - 3] = bits >>> 16;
  block[end - 2] = bits >>> 8;
  block[end - 1] = bits;
}
