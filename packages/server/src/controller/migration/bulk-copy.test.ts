// BulkCopy's progress from the carrier's figures: the percentage of the
// catalog's bytes copied, and a completion estimated from the copy speed so
// far. (The end-to-end migration test sees them over the API; how often it
// catches the copy half way depends on how fast the copy runs.)
import type { StoredFigures } from "../../store/replications";
import { expect, test } from "vitest";
import { progressOf } from "./bulk-copy";
import { GB } from "./deps";

const table = (name: string, copied: number, estimated: number, completed = false) =>
  ({ table: name, rowsCopied: copied / 100, rowsEstimated: estimated / 100, bytesCopied: copied, bytesEstimated: estimated, completed });
const row = (initialSync: ReturnType<typeof table>[], estimatedDataSizeGb: number | null = null) => ({
  figures: { initialSync } as unknown as StoredFigures,
  estimatedDataSizeGb,
});

test("a quarter of the catalog copied in 10 s: 25 %, done 30 s from now", () => {
  const started = Date.parse("2026-12-01T10:00:00Z");
  const now = started + 10_000;
  const p = progressOf(row([table("users", 200_000, 600_000, false), table("orders", 50_000, 400_000)]), started, now);
  expect(p).toMatchObject({ tables: 2, rows: 2_500, copiedBytes: 250_000, catalogBytes: 1_000_000, percent: 25 });
  expect(p.estimatedCompletion?.getTime()).toBe(now + 30_000);
});

test("nothing copied yet: the carrier's own estimate of the size, no completion; a copy not done reads at most 99.9 %", () => {
  const started = Date.parse("2026-12-01T10:00:00Z");
  const early = progressOf(row([], 0.5), started, started + 1_000);
  expect(early).toMatchObject({ tables: 0, copiedBytes: 0, catalogBytes: 0.5 * GB, percent: 0 });
  expect(early.estimatedCompletion).toBeUndefined();
  // COPY's bytes run a little past the heap's: still not 100 % until the carrier streams.
  const past = progressOf(row([table("users", 1_010_000, 1_000_000)]), started, started + 1_000);
  expect(past.percent).toBe(99.9);
  expect(past.estimatedCompletion?.getTime()).toBe(started + 1_000);
});
