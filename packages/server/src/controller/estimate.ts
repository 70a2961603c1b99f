// The estimates of a new replication, from facts: the size of the selected
// tables in the source catalog, and a copy speed the engine measures by
// reading a sample of the largest table the way the initial sync will.
import { measureCopySpeed } from "@heliosdb/replication-engine";
import type pg from "pg";

const SAMPLE_ROWS = 20_000;

export interface Estimate {
  dataSizeGb: number;
  initialSyncHours: number;
}

export async function estimate(source: pg.ClientConfig, tables: { schema: string; table: string; sizeBytes: number }[]): Promise<Estimate> {
  const total = tables.reduce((n, t) => n + t.sizeBytes, 0);
  const largest = [...tables].sort((a, b) => b.sizeBytes - a.sizeBytes)[0];
  const bytesPerSecond = largest && total > 0 ? await measureCopySpeed(source, largest, SAMPLE_ROWS) : 0;
  return {
    dataSizeGb: round(total / 1e9, 6),
    // Heap bytes over COPY-text bytes per second: close enough for an estimate, and both measured.
    initialSyncHours: bytesPerSecond > 0 ? round(total / bytesPerSecond / 3600, 6) : 0,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
