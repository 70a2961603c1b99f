import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { decodeBatch } from "./batch-decode";
import { BatchCodec, BatchIntegrityError, type BatchCodecOptions, type CompressionLevel, type SealedBatch } from "./codec";
import { ON_THREAD_BYTES } from "./compressors";
import { everyKind, repetitive, users } from "./fixtures";

const key = randomBytes(32);
const off = { enabled: false, level: "medium" } as const;

function codec(options: Partial<BatchCodecOptions> = {}): BatchCodec {
  return new BatchCodec({ replicationId: "rep-1", compression: off, encryption: { enabled: false }, ...options });
}
const encrypted = (options: Partial<BatchCodecOptions> = {}) => codec({ encryption: { enabled: true, key }, ...options });
const both = (options: Partial<BatchCodecOptions> = {}) =>
  codec({ compression: { enabled: true, level: "high" }, encryption: { enabled: true, key }, ...options });

const SEALED_AT_52342EF = [
  "X7kr8b8xcgvkvyVxXGnH6JkD/VAG0nh04+S0J8jxQf/23g/NN7Vg7+mBpYaYJHlaO4WGzUXo6zUxPM+5Zu4CvF4ynuOTUw1I",
  "TCnfI7xjPw5rIviw74p6lLJmrcZprMC9OHfgm0JBD094OBdCKXwoq802XY3M1iMX94ICQPhg9DR17KJLKCIHglzPtt9SmORk",
  "Em/jcI88hKYOVPc/H34K89oCSMRtZx1qVC/BaA6a/i9DVgeJgFMGPFuxXPh//uM76ZAmioZ9r5eG+KOb0HlpJf5YezHUPsE3",
  "FEKpdGoVlzzaWoiBxeVsmoZS/RKwcVThl/qq6cUabYN5YO0O36zuczov+5CwXbVsG1Q0w97htI85Vnw/rSe5/wGF2iBRRu8l",
  "INlR3kDcH7Rp26M7LNSGMw9HYvfojhIXD8pxTfiexDea+3G7OcqH7R5CyaApg2bHaf0kPBQHKh+5vtvuQagRwxdD2ylXOVqY",
  "qbVULugRhxJHiU7X5JedAiKWqBCaTXav4F5WOAekW1inNBqPAH3ycReWYcKTFz8J/HUaXpihhV5pwiKQUaLjkcdvmvXtquro",
  "zH9rojUb5pCCNoYFWhh6pS5/pwlCtMq1PEWTvtqSlvwcJSSYwLm+OmS+lPSJlajNtt0iYjPLN3otgP0cjdaLjpDxwIpt51YW",
  "32VYqCbyijVvUOsutybk11rtOOaV/J6Yy/WOmcZ2hUBMphi39D+Lgfy2VCF8NtnW7wkimFr4G3EEJgESQQperg1MUMxZk9Qs",
  "AW4ZuCZQTZo54vgMNHrmX49R8Ys8i56dwLPOnLhVHS9lUs6hih2kOPFrSgXWKvZlFPAu/5rILjKu1/A=",
].join("");

function flip(sealed: SealedBatch, position: number): SealedBatch {
  const bytes = Uint8Array.from(sealed.bytes);
  bytes[position] = (bytes[position] ?? 0) ^ 0x01;
  return { ...sealed, bytes };
}

describe("BatchCodec", () => {
  test("without compression or encryption, still serializes", async () => {
    const plain = codec();
    const batch = everyKind();
    const sealed = await plain.seal(batch);
    expect(sealed.sequence).toBe(batch.sequence);
    expect(sealed.rawBytes).toBe(sealed.shippedBytes);
    expect(sealed.bytes.length).toBe(sealed.shippedBytes);
    expect(decodeBatch(sealed.bytes)).toStrictEqual(batch);
    expect(await plain.open(sealed)).toStrictEqual(batch);
    expect(plain.compressionRatio).toBe(1);
  });

  test.each<CompressionLevel>(["low", "medium", "high"])("compression level %s compresses and round-trips", async (level) => {
    const compressing = codec({ compression: { enabled: true, level } });
    const batch = repetitive();
    const sealed = await compressing.seal(batch);
    expect(sealed.shippedBytes).toBe(sealed.bytes.length);
    expect(sealed.rawBytes / sealed.shippedBytes).toBeGreaterThan(4);
    expect(compressing.compressionRatio).toBeGreaterThan(4);
    expect(await compressing.open(sealed)).toStrictEqual(batch);
    expect(await compressing.open(await compressing.seal(everyKind()))).toStrictEqual(everyKind());
  });

  // Small payloads are compressed on the calling thread, large ones on the pool with an output chunk sized from the
  // input: both paths, one that shrinks so much that its decompression outgrows that chunk, and one that hardly shrinks.
  test.each<CompressionLevel>(["low", "medium", "high"])("level %s round-trips batches on both sides of the on-thread bound", async (level) => {
    const compressing = codec({ compression: { enabled: true, level } });
    const large = repetitive(1n, 60_000);
    const noise = repetitive(2n, 0);
    for (let i = 0; i < 1_500; i++) {
      noise.items.unshift({ kind: "change", change: { kind: "insert", relation: users, newRow: [String(i), randomBytes(300).toString("latin1"), "", "{}"] } });
    }
    for (const batch of [large, noise, repetitive(3n, 10)]) {
      const sealed = await compressing.seal(batch);
      expect(await compressing.open(sealed)).toStrictEqual(batch);
    }
    const sealedLarge = await compressing.seal(large);
    expect(sealedLarge.shippedBytes).toBeGreaterThan(ON_THREAD_BYTES / 4);
    expect(sealedLarge.rawBytes / sealedLarge.shippedBytes).toBeGreaterThan(8);
    const sealedNoise = await compressing.seal(noise);
    expect(sealedNoise.rawBytes).toBeGreaterThan(ON_THREAD_BYTES);
    expect(sealedNoise.rawBytes / sealedNoise.shippedBytes).toBeLessThan(1.5);
  });

  test("a compressed payload names its codec, which opens it whatever the level configured", async () => {
    const named = { low: 2, medium: 3, high: 1 } as const; // lz4, zstd, brotli
    const batch = repetitive(4n, 500);
    for (const level of ["low", "medium", "high"] as const) {
      const sealed = await codec({ compression: { enabled: true, level } }).seal(batch);
      expect(sealed.bytes[0]).toBe(named[level]);
      for (const other of ["low", "medium", "high"] as const) expect(await codec({ compression: { enabled: true, level: other } }).open(sealed)).toStrictEqual(batch);
    }
    const sealed = await codec({ compression: { enabled: true, level: "medium" } }).seal(batch);
    const unknown = Buffer.from(sealed.bytes);
    unknown[0] = 9;
    await expect(codec({ compression: { enabled: true, level: "medium" } }).open({ ...sealed, bytes: unknown })).rejects.toThrow(/names no known compression codec/);
  });

  test("higher levels compress at least as well", async () => {
    const sizes = [];
    for (const level of ["low", "medium", "high"] as const) {
      sizes.push((await codec({ compression: { enabled: true, level } }).seal(repetitive(1n, 2000))).shippedBytes);
    }
    expect(sizes[1]).toBeLessThanOrEqual(sizes[0] ?? 0);
    expect(sizes[2]).toBeLessThanOrEqual(sizes[1] ?? 0);
  });

  test("encryption round-trips, with a fresh nonce per batch", async () => {
    const sealing = encrypted();
    const batch = everyKind();
    const first = await sealing.seal(batch);
    const second = await sealing.seal(batch);
    expect(first.shippedBytes).toBe(first.rawBytes + 12 + 16);
    expect(Buffer.from(first.bytes.subarray(0, 12)).equals(Buffer.from(second.bytes.subarray(0, 12)))).toBe(false);
    expect(Buffer.from(first.bytes).equals(Buffer.from(second.bytes))).toBe(false);
    // The plaintext does not show through.
    expect(Buffer.from(first.bytes).includes("users")).toBe(false);
    // Another codec with the same configuration opens it.
    expect(await encrypted().open(first)).toStrictEqual(batch);
    expect(await sealing.open(second)).toStrictEqual(batch);
  });

  test("nonces stay unique across the pool's refills, between codecs", async () => {
    const a = encrypted();
    const b = both();
    const seen = new Set<string>();
    const batch = everyKind();
    for (let i = 0; i < 700; i++) {
      const sealed = await (i % 3 === 0 ? b : a).seal(batch);
      seen.add(Buffer.from(sealed.bytes.subarray(0, 12)).toString("hex"));
      if (i % 97 === 0) expect(await (i % 3 === 0 ? both() : encrypted()).open(sealed)).toStrictEqual(batch);
    }
    expect(seen.size).toBe(700);
  });

  test("a batch sealed by an earlier version opens under the same codec (the layout and additional data are unchanged)", async () => {
    // Sealed at 52342ef: key of 32 bytes of 7, replication "rep-golden", medium compression (then brotli q1), everyKind(42n).
    const golden = (level: CompressionLevel) =>
      new BatchCodec({ replicationId: "rep-golden", compression: { enabled: true, level }, encryption: { enabled: true, key: Buffer.alloc(32, 7) } });
    const bytes = Buffer.from(SEALED_AT_52342EF, "base64");
    const sealed = { sequence: 42n, bytes, rawBytes: 0, shippedBytes: bytes.length };
    // High is brotli still (q4; one decoder opens every quality).
    expect(await golden("high").open(sealed)).toStrictEqual(everyKind(42n));
    // Medium is zstd now: the configured codec is authenticated with each batch. Sealed batches never outlive the
    // process that sealed them (nothing stores them), so no replication meets one of these.
    await expect(golden("medium").open(sealed)).rejects.toBeInstanceOf(BatchIntegrityError);
  });

  test("compression and encryption together", async () => {
    const sealing = both();
    const batch = repetitive(9n);
    const sealed = await sealing.seal(batch);
    expect(sealed.rawBytes / sealed.shippedBytes).toBeGreaterThan(4);
    expect(await both().open(sealed)).toStrictEqual(batch);
    expect(await both().open(await sealing.seal(everyKind(10n)))).toStrictEqual(everyKind(10n));
    await expect(both().open(flip(sealed, Math.floor(sealed.bytes.length / 2)))).rejects.toBeInstanceOf(BatchIntegrityError);
  });

  describe.each([
    ["encryption", encrypted],
    ["compression and encryption", both],
  ] as const)("tampering, with %s", (_, make) => {
    test("any flipped byte fails", async () => {
      const sealing = make();
      const sealed = await sealing.seal(everyKind());
      const length = sealed.bytes.length;
      // The nonce, the ciphertext's first, middle and last bytes, and the tag.
      const positions = [0, 5, 11, 12, 13, Math.floor(length / 2), length - 17, length - 16, length - 8, length - 1];
      for (const position of positions) {
        await expect(sealing.open(flip(sealed, position)), `byte ${position}`).rejects.toBeInstanceOf(BatchIntegrityError);
      }
      // Every position of a small batch.
      const small = await sealing.seal({ sequence: 1n, items: [{ kind: "commit", transaction: { xid: 1, commitLsn: 2n, endLsn: 3n, commitTime: new Date(4) } }] });
      for (let position = 0; position < small.bytes.length; position++) {
        for (const bit of [0x01, 0x80]) {
          const bytes = Uint8Array.from(small.bytes);
          bytes[position] = (bytes[position] ?? 0) ^ bit;
          await expect(sealing.open({ ...small, bytes }), `byte ${position}`).rejects.toBeInstanceOf(BatchIntegrityError);
        }
      }
      expect(await sealing.open(sealed)).toStrictEqual(everyKind());
    });

    test("truncated, extended or empty bytes fail", async () => {
      const sealing = make();
      const sealed = await sealing.seal(everyKind());
      for (const bytes of [
        sealed.bytes.subarray(0, sealed.bytes.length - 1),
        sealed.bytes.subarray(1),
        sealed.bytes.subarray(0, 27),
        new Uint8Array(0),
        Uint8Array.of(...sealed.bytes, 0),
      ]) {
        await expect(sealing.open({ ...sealed, bytes })).rejects.toBeInstanceOf(BatchIntegrityError);
      }
    });

    test("a batch opened under another sequence number fails", async () => {
      const sealing = make();
      const one = await sealing.seal(everyKind(1n));
      const two = await sealing.seal(everyKind(2n));
      await expect(sealing.open({ ...one, sequence: 2n })).rejects.toBeInstanceOf(BatchIntegrityError);
      await expect(sealing.open({ ...two, bytes: one.bytes })).rejects.toBeInstanceOf(BatchIntegrityError);
      await expect(sealing.open({ ...one, sequence: 1n + (1n << 32n) })).rejects.toBeInstanceOf(BatchIntegrityError);
      await expect(sealing.open({ ...one, sequence: -1n })).rejects.toBeInstanceOf(BatchIntegrityError);
      expect(await sealing.open(two)).toStrictEqual(everyKind(2n));
    });

    test("a batch of another replication fails", async () => {
      const sealed = await make().seal(everyKind());
      await expect(make({ replicationId: "rep-2" }).open(sealed)).rejects.toBeInstanceOf(BatchIntegrityError);
      await expect(make({ replicationId: "rep-1 " }).open(sealed)).rejects.toBeInstanceOf(BatchIntegrityError);
    });

    test("a batch sealed under another key fails", async () => {
      const sealed = await make().seal(everyKind());
      const other = Buffer.from(key);
      other[31] = (other[31] ?? 0) ^ 1;
      await expect(make({ encryption: { enabled: true, key: other } }).open(sealed)).rejects.toBeInstanceOf(BatchIntegrityError);
      await expect(make({ encryption: { enabled: true, key: randomBytes(32) } }).open(sealed)).rejects.toThrow(/does not authenticate/);
    });
  });

  test("a batch opened with another compression setting fails", async () => {
    const sealed = await both().seal(everyKind());
    await expect(encrypted().open(sealed)).rejects.toBeInstanceOf(BatchIntegrityError);
    await expect(both().open(await encrypted().seal(everyKind()))).rejects.toBeInstanceOf(BatchIntegrityError);
  });

  test("without encryption, bad bytes and a wrong sequence number still fail cleanly", async () => {
    for (const make of [() => codec(), () => codec({ compression: { enabled: true, level: "low" } })]) {
      const sealing = make();
      const sealed = await sealing.seal(everyKind(5n));
      await expect(sealing.open({ ...sealed, sequence: 6n })).rejects.toBeInstanceOf(BatchIntegrityError);
      await expect(sealing.open({ ...sealed, bytes: Uint8Array.of(0xff, 0xff, 0xff, 0xff) })).rejects.toBeInstanceOf(
        BatchIntegrityError,
      );
      await expect(sealing.open({ ...sealed, bytes: sealed.bytes.subarray(0, 20) })).rejects.toBeInstanceOf(BatchIntegrityError);
    }
    // An encrypted batch opened as a plain one.
    await expect(codec().open(await encrypted().seal(everyKind()))).rejects.toBeInstanceOf(BatchIntegrityError);
  });

  test("counts the batches it seals", async () => {
    const sealing = both();
    expect(sealing.stats).toEqual({ batches: 0, rawBytes: 0, shippedBytes: 0 });
    expect(sealing.compressionRatio).toBe(1);
    const a = await sealing.seal(repetitive(1n));
    const b = await sealing.seal(everyKind(2n));
    await sealing.open(a);
    expect(sealing.stats).toEqual({
      batches: 2,
      rawBytes: a.rawBytes + b.rawBytes,
      shippedBytes: a.shippedBytes + b.shippedBytes,
    });
    expect(sealing.compressionRatio).toBeCloseTo((a.rawBytes + b.rawBytes) / (a.shippedBytes + b.shippedBytes));
    expect(sealing.compressionRatio).toBeGreaterThan(1);
  });

  test("refuses a missing or short key and an unknown level", () => {
    expect(() => codec({ encryption: { enabled: true } })).toThrow(/32-byte key/);
    expect(() => codec({ encryption: { enabled: true, key: randomBytes(16) } })).toThrow(/32-byte key/);
    expect(() => codec({ compression: { enabled: true, level: "max" as CompressionLevel } })).toThrow(/compression level/);
    expect(() => codec({ replicationId: "" })).toThrow(/replicationId/);
    // A key is ignored while encryption is off.
    expect(() => codec({ encryption: { enabled: false, key: randomBytes(3) } })).not.toThrow();
  });

  test("seal refuses a batch the format cannot carry, and counts nothing", async () => {
    const sealing = both();
    await expect(sealing.seal({ sequence: 1n << 64n, items: [] })).rejects.toThrow(RangeError);
    expect(sealing.stats.batches).toBe(0);
  });
});
