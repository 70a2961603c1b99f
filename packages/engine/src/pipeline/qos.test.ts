// The QoS table of docs/engine.md is the one the engine runs.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { QoSTier } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { qosSettings } from "./qos";

const DOC = fileURLToPath(new URL("../../../../docs/engine.md", import.meta.url));

/** "10 ms", "1 s", "0 ms", "never", "at once" as milliseconds. */
function ms(cell: string): number {
  if (cell === "never" || cell === "at once") return 0;
  const m = /^([\d,]+) (ms|s)$/.exec(cell);
  if (!m) throw new Error(`not a duration: ${JSON.stringify(cell)}`);
  return Number(m[1]!.replace(/,/g, "")) * (m[2] === "s" ? 1000 : 1);
}

test("docs/engine.md's QoS table holds the settings each tier runs with", () => {
  const doc = readFileSync(DOC, "utf8");
  const section = doc.slice(doc.indexOf("## QoS tiers"));
  const tiers: Record<string, QoSTier> = {
    Synchronous: QoSTier.SYNCHRONOUS,
    Premium: QoSTier.PREMIUM,
    Standard: QoSTier.STANDARD,
    BestEffort: QoSTier.BEST_EFFORT,
  };
  const rows = section
    .split("\n")
    .filter((line) => /^\| (Synchronous|Premium|Standard|BestEffort) \|/.test(line))
    .map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
  expect(rows.map((r) => r[0])).toEqual(Object.keys(tiers));
  for (const [name, rowsCell, flush, pause, report] of rows) {
    const settings = qosSettings(tiers[name!]!);
    expect({ name, batchRows: Number(rowsCell!.replace(/,/g, "")), flushIntervalMs: ms(flush!), coalesceMs: ms(pause!), ackIntervalMs: ms(report!) }).toEqual({
      name,
      ...settings,
    });
  }
});
