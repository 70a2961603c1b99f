// What the server may learn of a tenant's database before it replicates
// anything: whether it can be reached with the credentials given, and how
// fast a table reads the way the initial sync will read it (COPY TO STDOUT).
// SQL against tenants' databases lives in the engine; the server's
// controller calls these.
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { connect } from "../connect";

/** Connects and runs one query; rejects with the driver's error when either fails. */
export async function probeConnection(config: pg.ClientConfig): Promise<void> {
  let client: pg.Client | undefined;
  try {
    client = await connect(config);
    await client.query("SELECT 1");
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/** Which server a database lives on, when it exists: what the server needs to tell a target from its source. */
export type DatabaseProbe = { exists: false } | { exists: true; systemIdentifier: string };

/**
 * Connects to the configured database: `exists: false` when the server says
 * it does not exist; else the cluster's system identifier (pg_control_system,
 * readable by any role), the same for every database of one cluster and
 * different for every initdb. Rejects with the driver's error otherwise.
 */
export async function probeDatabase(config: pg.ClientConfig): Promise<DatabaseProbe> {
  let client: pg.Client;
  try {
    client = await connect(config);
  } catch (e) {
    if ((e as { code?: string }).code === "3D000") return { exists: false }; // invalid_catalog_name
    throw e;
  }
  try {
    const { rows } = await client.query<{ id: string }>("SELECT system_identifier::text AS id FROM pg_control_system()");
    return { exists: true, systemIdentifier: rows[0]!.id };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Bytes per second of COPY text read from the first `sampleRows` rows of a
 * table (0 when the read took no measurable time).
 */
export async function measureCopySpeed(config: pg.ClientConfig, table: { schema: string; table: string }, sampleRows: number): Promise<number> {
  const client = await connect(config);
  try {
    const started = process.hrtime.bigint();
    let bytes = 0;
    const stream = client.query(
      copyTo(`COPY (SELECT * FROM ${pg.escapeIdentifier(table.schema)}.${pg.escapeIdentifier(table.table)} LIMIT ${Math.trunc(sampleRows)}) TO STDOUT`),
    );
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return seconds > 0 ? bytes / seconds : 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}
