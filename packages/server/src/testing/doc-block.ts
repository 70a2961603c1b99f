// Tables in docs/ that the code decides (permissions, rate-limit tiers) are
// written by tests, between a start marker and an end marker: the test fails
// when the doc differs from the code, and `UPDATE_DOCS=1` rewrites the block.
import { readFileSync, writeFileSync } from "node:fs";
import { expect } from "vitest";

/** Holds the block of `doc` between `start` and `end` to `content` (rewrites it with UPDATE_DOCS=1). */
export function expectDocBlock(doc: string, start: string, end: string, content: string): void {
  const text = readFileSync(doc, "utf8");
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  expect(from, `${doc} lacks ${start}`).toBeGreaterThan(0);
  const expected = `${start}\n${content}\n${end}`;
  const written = text.slice(from, to + end.length);
  if (written !== expected && process.env.UPDATE_DOCS) writeFileSync(doc, text.replace(written, expected));
  else expect(written, "run with UPDATE_DOCS=1 to rewrite the block").toBe(expected);
}
