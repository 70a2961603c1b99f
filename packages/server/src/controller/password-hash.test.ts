// scrypt as stored: the parameters the docs state, a salt of its own per
// hash, the right secret accepted and every other refused — a missing hash
// included.
import { expect, test } from "vitest";
import { hashSecret, verifySecret } from "./password-hash";

test("scrypt N=2^15 r=8 p=1 with a per-secret salt; only the secret verifies", async () => {
  const [a, b] = await Promise.all([hashSecret("correct horse battery staple"), hashSecret("correct horse battery staple")]);
  const [scheme, logN, r, p, salt, hash] = a.split("$");
  expect([scheme, logN, r, p]).toEqual(["scrypt", "15", "8", "1"]);
  expect(Buffer.from(salt!, "base64url")).toHaveLength(16);
  expect(Buffer.from(hash!, "base64url")).toHaveLength(32);
  expect(a).not.toBe(b);
  expect(a).not.toContain("horse");
  expect(await verifySecret("correct horse battery staple", a)).toBe(true);
  expect(await verifySecret("correct horse battery staple", b)).toBe(true);
  expect(await verifySecret("correct horse battery stapl", a)).toBe(false);
  expect(await verifySecret("correct horse battery staple", undefined)).toBe(false);
  expect(await verifySecret("anything", "not a hash")).toBe(false);
});
