// Test support for migration tests: the tenant's routing read over REST as
// an application reads it, writers that follow it (test/failover/writers.ts),
// and waiting for a migration to end or reach a phase.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { EAST, type World } from "../../src/testing/world";
import { startRoutedWriters, type RoutedWriters } from "../failover/writers";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Body = Record<string, any>;

/** The tenant's routing names production_db on east (us-east-1). */
export async function routeToEast(world: World): Promise<void> {
  await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)`, [
    JSON.stringify({ connectionId: EAST, database: "production_db", schema: "public", region: "us-east-1" }),
  ]);
}

/** "connection_id/database" → a session on that cluster. */
export function connector(world: World) {
  return (primary: string): Promise<pg.Client> => {
    const [connectionId, database] = primary.split("/") as [string, string];
    return (connectionId === EAST ? world.east : world.west).connect(database);
  };
}

export function routedWriters(world: World, tag: string, writers = 4): RoutedWriters {
  return startRoutedWriters({
    writers,
    tag,
    routing: async () => {
      const res = await world.rest("GET", "/tenants/tenant-123/routing");
      if (res.status !== 200) throw new Error(`routing: ${res.status} ${JSON.stringify(res.body)}`);
      const r = res.body;
      return { version: BigInt(r.version), primary: `${r.primary.connection_id}/${r.primary.database}`, writesBlocked: r.writes_blocked === true };
    },
    connect: connector(world),
  });
}

export async function migrationEnded(world: World, id: string, timeoutMs = 180_000): Promise<Body> {
  let body: Body | undefined;
  await waitFor(async () => {
    body = (await world.rest("GET", `/migrations/${id}`)).body;
    return body?.status !== "InProgress";
  }, `migration ${id} to end`, timeoutMs);
  return body!;
}

export async function inPhase(world: World, id: string, phase: string, timeoutMs = 120_000): Promise<Body> {
  let body: Body | undefined;
  await waitFor(async () => {
    body = (await world.rest("GET", `/migrations/${id}`)).body;
    return body?.current_phase === phase;
  }, `migration ${id} to reach ${phase}`, timeoutMs);
  return body!;
}

/** The tenant's tables in a database's public schema. */
export async function tablesOf(db: pg.ClientBase): Promise<string[]> {
  const { rows } = await db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
  return rows.map((r) => r.tablename as string);
}

/** Replication slots and publications left on a database. */
export async function leftovers(db: pg.ClientBase): Promise<{ slots: string[]; publications: string[] }> {
  const slots = await db.query("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()");
  const publications = await db.query("SELECT pubname FROM pg_publication");
  return { slots: slots.rows.map((r) => r.slot_name), publications: publications.rows.map((r) => r.pubname) };
}
