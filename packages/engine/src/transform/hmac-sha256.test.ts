import { createHmac, randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import { HmacSha256 } from "./hmac-sha256";

test("equals node:crypto's HMAC-SHA-256 for every length around the block boundaries and any key up to a block", () => {
  for (const keyLength of [0, 1, 16, 32, 63, 64]) {
    const key = randomBytes(keyLength);
    const hmac = new HmacSha256(key);
    for (let length = 0; length <= 260; length++) {
      const bytes = randomBytes(length + 7);
      const out = Buffer.alloc(70, 0xee);
      hmac.hexInto(bytes, 3, 3 + length, out, 3);
      const expected = createHmac("sha256", key).update(bytes.subarray(3, 3 + length)).digest("hex");
      expect(out.toString("latin1", 3, 67)).toBe(expected);
      // Nothing around the 64 digits is written.
      expect([out[2], out[67]]).toEqual([0xee, 0xee]);
    }
  }
});

test("hex() hashes a string's UTF-8 bytes, and the object can be reused", () => {
  const key = randomBytes(32);
  const hmac = new HmacSha256(key);
  for (const value of ["", "a", "alice@example.com", "ü€😀".repeat(40), "x".repeat(5000), "a"]) {
    expect(hmac.hex(value)).toBe(createHmac("sha256", key).update(value, "utf8").digest("hex"));
  }
});

test("refuses a key longer than a block", () => {
  expect(() => new HmacSha256(randomBytes(65))).toThrow(RangeError);
});
