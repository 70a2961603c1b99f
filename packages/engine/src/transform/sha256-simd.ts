// The WebAssembly module of sha256-lanes.ts, assembled from the code below
// (no binary is shipped): HMAC-SHA-256 of four values at once, each of
// SHA-256's 32-bit words a 4-lane i32x4 vector, one lane per value.
//
// Memory layout (one 64 KiB page, one module per thread):
//   INNER, OUTER  the key's state after its ipad and opad blocks (8 × i32 each)
//   OUT           the four digests: word i of lane j at OUT + 16 i + 4 j
//   MASKS         per message block k, 16 bytes: lane j is all ones while k is
//                 one of lane j's blocks (shorter values keep their state)
//   STATE         the running state, 8 × v128
//   SCHEDULE      the message schedule's words 16–63, 64 × v128
//   BLOCKS        the values' padded blocks, transposed: block k, word i, lane j
//                 at BLOCKS + 256 k + 16 i + 4 j, as a little-endian i32
//   OUTER_BLOCK   the outer hash's block: the inner digest and its padding

/** SHA-256's round constants. */
export const ROUND_CONSTANTS = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/** Values hashed together. */
export const LANES = 4;
/** Message blocks a lane can take: values up to 16 · 64 − 9 bytes; longer ones take the scalar path. */
export const MAX_BLOCKS = 16;
export const MAX_LANE_BYTES = MAX_BLOCKS * 64 - 9;

export const INNER = 0;
export const OUTER = 32;
export const OUT = 128;
export const MASKS = 256; // MAX_BLOCKS + 1 masks: the last, all ones, is the outer hash's
export const STATE = 640;
export const SCHEDULE = 1024;
export const BLOCKS = 2048;
export const OUTER_BLOCK = BLOCKS + 256 * MAX_BLOCKS;

// --- the module -------------------------------------------------------------

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
};

// Opcodes: the core ones, and the SIMD ones (after the 0xfd prefix).
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const I32_CONST = 0x41;
const I32_ADD = 0x6a;
const I32_SHL = 0x74;
const I32_GE_U = 0x4f;
const CALL = 0x10;
const BLOCK = 0x02;
const LOOP = 0x03;
const BR = 0x0c;
const BR_IF = 0x0d;
const END = 0x0b;
const VOID = 0x40;
const I32 = 0x7f;
const V128 = 0x7b;
const SIMD = {
  load: 0x00,
  load32Splat: 0x09,
  store: 0x0b,
  const: 0x0c,
  and: 0x4e,
  or: 0x50,
  xor: 0x51,
  bitselect: 0x52,
  shl: 0xab,
  shrU: 0xad,
  add: 0xae,
} as const;

/** Emits one function body's instructions. */
class Code {
  readonly bytes: number[] = [];
  get(local: number): void {
    this.bytes.push(LOCAL_GET, ...uleb(local));
  }
  set(local: number): void {
    this.bytes.push(LOCAL_SET, ...uleb(local));
  }
  i32(n: number): void {
    this.bytes.push(I32_CONST, ...sleb(n | 0));
  }
  op(...ops: number[]): void {
    this.bytes.push(...ops);
  }
  v(op: keyof typeof SIMD): void {
    this.bytes.push(0xfd, ...uleb(SIMD[op]));
  }
  /** A memory access: the address is on the stack, `offset` is added. */
  mem(op: "load" | "load32Splat" | "store", offset: number): void {
    this.v(op);
    this.bytes.push(0, ...uleb(offset));
  }
  /** An i32x4 of `n` in every lane. */
  splat(n: number): void {
    this.v("const");
    for (let lane = 0; lane < 4; lane++) this.bytes.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  rotr(x: number, n: number): void {
    this.get(x);
    this.i32(n);
    this.v("shrU");
    this.get(x);
    this.i32(32 - n);
    this.v("shl");
    this.v("or");
  }
  /** rotr r1 ^ rotr r2 ^ (rotr r3, or shr s when `shift`). */
  sigma(x: number, r1: number, r2: number, r3: number, shift = false): void {
    this.rotr(x, r1);
    this.rotr(x, r2);
    this.v("xor");
    if (shift) {
      this.get(x);
      this.i32(r3);
      this.v("shrU");
    } else this.rotr(x, r3);
    this.v("xor");
  }
}

// compress(block, mask): one block of four lanes into STATE. Locals: 0 the
// block's address, 1 the mask's; v128s a–h at 2–9, t1 at 10, a scratch word at 11.
function compressFunction(): number[] {
  const c = new Code();
  const BLOCK_AT = 0;
  const MASK_AT = 1;
  const V = 2;
  const T1 = 10;
  const X = 11;
  const loadW = (i: number) => {
    if (i < 16) {
      c.get(BLOCK_AT);
      c.mem("load", 16 * i);
    } else {
      c.i32(0);
      c.mem("load", SCHEDULE + 16 * i);
    }
  };
  for (let i = 0; i < 8; i++) {
    c.i32(0);
    c.mem("load", STATE + 16 * i);
    c.set(V + i);
  }
  // The eight working variables rotate names instead of values: after 64 rounds they are back in place.
  let n = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => V + i);
  for (let i = 0; i < 64; i++) {
    const [a, b, cc, d, e, f, g, h] = n as [number, number, number, number, number, number, number, number];
    if (i >= 16) {
      // W[i] = W[i−16] + σ0(W[i−15]) + W[i−7] + σ1(W[i−2])
      c.i32(0);
      loadW(i - 16);
      loadW(i - 15);
      c.set(X);
      c.sigma(X, 7, 18, 3, true);
      c.v("add");
      loadW(i - 7);
      c.v("add");
      loadW(i - 2);
      c.set(X);
      c.sigma(X, 17, 19, 10, true);
      c.v("add");
      c.mem("store", SCHEDULE + 16 * i);
    }
    // t1 = h + Σ1(e) + Ch(e, f, g) + K[i] + W[i]; Ch is a bit select by e.
    c.get(h);
    c.sigma(e, 6, 11, 25);
    c.v("add");
    c.get(f);
    c.get(g);
    c.get(e);
    c.v("bitselect");
    c.v("add");
    c.splat(ROUND_CONSTANTS[i]!);
    c.v("add");
    loadW(i);
    c.v("add");
    c.set(T1);
    // d += t1; h = t1 + Σ0(a) + Maj(a, b, c), where Maj picks c where a and b differ, else a.
    c.get(d);
    c.get(T1);
    c.v("add");
    c.set(d);
    c.get(T1);
    c.sigma(a, 2, 13, 22);
    c.v("add");
    c.get(cc);
    c.get(a);
    c.get(a);
    c.get(b);
    c.v("xor");
    c.v("bitselect");
    c.v("add");
    c.set(h);
    n = [h, a, b, cc, d, e, f, g];
  }
  // STATE += working variables, in the lanes the mask keeps.
  for (let i = 0; i < 8; i++) {
    c.i32(0);
    c.i32(0);
    c.mem("load", STATE + 16 * i);
    c.get(V + i);
    c.v("add");
    c.i32(0);
    c.mem("load", STATE + 16 * i);
    c.get(MASK_AT);
    c.mem("load", 0);
    c.v("bitselect");
    c.mem("store", STATE + 16 * i);
  }
  c.op(END);
  return [1, 10, V128, ...c.bytes];
}

// hmac(blocks): the inner hash over `blocks` blocks from INNER's state, then
// the outer hash from OUTER's; digests at OUT. Locals: 0 blocks, 1 k.
function hmacFunction(): number[] {
  const c = new Code();
  // Eight vectors from `from` to `to`: a key's i32 state splat into STATE's lanes, or STATE copied out.
  const moveState = (load: "load32Splat" | "load", from: number, fromStride: number, to: number) => {
    for (let i = 0; i < 8; i++) {
      c.i32(0);
      c.i32(0);
      c.mem(load, from + fromStride * i);
      c.mem("store", to + 16 * i);
    }
  };
  const stateFrom = (at: number) => moveState("load32Splat", at, 4, STATE);
  const copyState = (to: number) => moveState("load", STATE, 16, to);
  stateFrom(INNER);
  c.i32(0);
  c.set(1);
  c.op(BLOCK, VOID, LOOP, VOID);
  c.get(1);
  c.get(0);
  c.op(I32_GE_U, BR_IF, 1);
  c.get(1);
  c.i32(8);
  c.op(I32_SHL);
  c.i32(BLOCKS);
  c.op(I32_ADD);
  c.get(1);
  c.i32(4);
  c.op(I32_SHL);
  c.i32(MASKS);
  c.op(I32_ADD);
  c.op(CALL, 0);
  c.get(1);
  c.i32(1);
  c.op(I32_ADD);
  c.set(1);
  c.op(BR, 0, END, END);
  // The outer block: the inner digest (words 0–7), then its fixed padding, set once at instantiation.
  copyState(OUTER_BLOCK);
  stateFrom(OUTER);
  c.i32(OUTER_BLOCK);
  c.i32(MASKS + 16 * MAX_BLOCKS);
  c.op(CALL, 0);
  copyState(OUT);
  c.op(END);
  return [1, 1, I32, ...c.bytes];
}

/** The module's bytes: exports `memory` and `hmac(blocks)`. */
export function moduleBytes(): Uint8Array<ArrayBuffer> {
  const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const name = (s: string) => [...uleb(s.length), ...Buffer.from(s, "latin1")];
  const compress = compressFunction();
  const hmac = hmacFunction();
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [2, 0x60, 2, I32, I32, 0, 0x60, 1, I32, 0]), // types: (i32, i32) → (), (i32) → ()
    ...section(3, [2, 0, 1]), // functions: compress, hmac
    ...section(5, [1, 0, 1]), // one page of memory
    ...section(7, [2, ...name("memory"), 2, 0, ...name("hmac"), 0, 1]),
    ...section(10, [2, ...uleb(compress.length), ...compress, ...uleb(hmac.length), ...hmac]),
  ]);
}
