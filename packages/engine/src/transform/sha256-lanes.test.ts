import { createHmac, randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import { HmacSha256 } from "./hmac-sha256";
import { LANES, MAX_LANE_BYTES, hmacLanes, lanesAvailable } from "./sha256-lanes";

const hex = (key: Buffer, value: Uint8Array) => createHmac("sha256", key).update(value).digest("hex");

// The machines this runs on (Node 20+ on x64 and arm64) all have WebAssembly SIMD: a platform without it
// would take the scalar path silently, so say so here rather than test only the fallback.
test("this platform runs the lanes", () => {
  expect(lanesAvailable()).toBe(true);
});

test("each lane equals node:crypto's HMAC-SHA-256, whatever the other lanes' lengths and block counts", () => {
  const key = randomBytes(32);
  const hmac = new HmacSha256(key);
  // Around every padding edge (55/56 bytes, 64, 119/120, 128) and up to the lanes' limit, mixed across lanes.
  const lengths = [0, 1, 3, 4, 31, 32, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 300, MAX_LANE_BYTES - 1, MAX_LANE_BYTES];
  let cases = 0;
  for (let count = 1; count <= LANES; count++) {
    for (let i = 0; i < lengths.length; i++) {
      const lens = Array.from({ length: count }, (_, j) => lengths[(i + 7 * j) % lengths.length]!);
      const src = randomBytes(lens.reduce((n, l) => n + l, 0) + 5);
      const from: number[] = [];
      const to: number[] = [];
      let p = 5;
      for (const l of lens) {
        from.push(p);
        p += l;
        to.push(p);
      }
      const out = Buffer.alloc(64 * count + 2, 0xee);
      const at = lens.map((_, j) => 1 + 64 * j);
      expect(hmacLanes(hmacState(hmac, "inner"), hmacState(hmac, "outer"), src, from, to, count, out, at)).toBe(true);
      for (let j = 0; j < count; j++) expect(out.toString("latin1", at[j], at[j]! + 64)).toBe(hex(key, src.subarray(from[j], to[j])));
      // Nothing around the digits is written.
      expect([out[0], out[out.length - 1]]).toEqual([0xee, 0xee]);
      cases++;
    }
  }
  expect(cases).toBe(LANES * lengths.length);
});

test("a value longer than the lanes take is refused, untouched, and writeLanes hashes it one at a time", () => {
  const key = randomBytes(32);
  const hmac = new HmacSha256(key);
  const src = randomBytes(MAX_LANE_BYTES + 1 + 10);
  const out = Buffer.alloc(128, 0xee);
  const from = [0, MAX_LANE_BYTES + 1];
  const to = [MAX_LANE_BYTES + 1, src.length];
  expect(hmacLanes(hmacState(hmac, "inner"), hmacState(hmac, "outer"), src, from, to, 2, out, [0, 64])).toBe(false);
  expect(out.every((b) => b === 0xee)).toBe(true);
  hmac.writeLanes(src, from, to, 2, out, [0, 64]);
  expect(out.toString("latin1", 0, 64)).toBe(hex(key, src.subarray(0, MAX_LANE_BYTES + 1)));
  expect(out.toString("latin1", 64, 128)).toBe(hex(key, src.subarray(MAX_LANE_BYTES + 1)));
});

test("two keys used in turn on one thread's lanes never mix", () => {
  const keys = [randomBytes(32), randomBytes(16)];
  const hmacs = keys.map((k) => new HmacSha256(k));
  const src = Buffer.from("alice@example.com+1-555-0100123-45-6789");
  const from = [0, 17, 28];
  const to = [17, 28, src.length];
  for (let round = 0; round < 3; round++) {
    for (const [i, hmac] of hmacs.entries()) {
      const out = Buffer.alloc(192);
      hmac.writeLanes(src, from, to, 3, out, [0, 64, 128]);
      for (let j = 0; j < 3; j++) expect(out.toString("latin1", 64 * j, 64 * j + 64)).toBe(hex(keys[i]!, src.subarray(from[j], to[j])));
    }
  }
});

// The key's states, as HmacSha256 keeps them (private: read here for the lanes' own test).
function hmacState(hmac: HmacSha256, which: "inner" | "outer"): Int32Array {
  return (hmac as unknown as Record<string, Int32Array>)[which]!;
}
