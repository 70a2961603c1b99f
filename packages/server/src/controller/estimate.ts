// The estimates of a new replication, from facts: the size of the selected
// tables in the source catalog, and a copy speed measured by reading a
// sample of the largest table the way the initial sync will (COPY TO STDOUT).
import { connect } from "@heliosdb/replication-engine";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";

const SAMPLE_ROWS = 20_000;

export interface Estimate {
  dataSizeGb: number;
  initialSyncHours: number;
}

export async function estimate(source: pg.ClientConfig, tables: { schema: string; table: string; sizeBytes: number }[]): Promise<Estimate> {
  const total = tables.reduce((n, t) => n + t.sizeBytes, 0);
  const largest = [...tables].sort((a, b) => b.sizeBytes - a.sizeBytes)[0];
  let bytesPerSecond = 0;
  if (largest && total > 0) {
    const client = await connect(source);
    try {
      const started = process.hrtime.bigint();
      let bytes = 0;
      const stream = client.query(
        copyTo(`COPY (SELECT * FROM ${pg.escapeIdentifier(largest.schema)}.${pg.escapeIdentifier(largest.table)} LIMIT ${SAMPLE_ROWS}) TO STDOUT`),
      );
      for await (const chunk of stream) bytes += (chunk as Buffer).length;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      bytesPerSecond = seconds > 0 ? bytes / seconds : 0;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
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
