import { hkdfSync } from "node:crypto";
import { expect, test } from "vitest";
import { KEY_PURPOSES, MasterKeyProvider } from "./keys";

const master = Buffer.alloc(32, 1);

test("keys are 32 bytes, HKDF-SHA-256 of the master key, and stable", async () => {
  const keys = new MasterKeyProvider(master);
  const key = await keys.key("tenant-a", "hash");
  expect(key).toHaveLength(32);
  expect(await new MasterKeyProvider(Buffer.from(master)).key("tenant-a", "hash")).toEqual(key);
  const expected = Buffer.from(
    hkdfSync("sha256", master, "heliosdb/replication/transform-keys/v1", "hash\u0000tenant-a", 32),
  );
  expect(key).toEqual(expected);
});

test("every (tenant, purpose) pair gets its own key", async () => {
  const keys = new MasterKeyProvider(master);
  const seen = new Set<string>();
  for (const tenant of ["tenant-a", "tenant-b", "a\u0000hash"]) {
    for (const purpose of KEY_PURPOSES) seen.add((await keys.key(tenant, purpose)).toString("hex"));
  }
  expect(seen.size).toBe(3 * KEY_PURPOSES.length);
  expect(await new MasterKeyProvider(Buffer.alloc(32, 2)).key("tenant-a", "hash")).not.toEqual(
    await keys.key("tenant-a", "hash"),
  );
});

test("keys are cached, and callers get their own copy", async () => {
  const keys = new MasterKeyProvider(master);
  const [a, b] = await Promise.all([keys.key("t", "vault"), keys.key("t", "vault")]);
  expect(a).toEqual(b);
  a.fill(0);
  expect(await keys.key("t", "vault")).toEqual(b);
});

test("a master key that is not 32 bytes is refused; hex and base64 forms are read", async () => {
  expect(() => new MasterKeyProvider(Buffer.alloc(16))).toThrow(/32 bytes/);
  const fromHex = MasterKeyProvider.fromString(master.toString("hex"));
  const fromB64 = MasterKeyProvider.fromString(master.toString("base64"));
  const direct = await new MasterKeyProvider(master).key("t", "batch");
  expect(await fromHex.key("t", "batch")).toEqual(direct);
  expect(await fromB64.key("t", "batch")).toEqual(direct);
});
