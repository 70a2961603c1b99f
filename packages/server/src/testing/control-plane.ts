// Test support: a control-plane database on a real PostgreSQL cluster, with
// the migrations applied, for the store's own tests. Not for production use.
import { startCluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { createPool, migrate } from "../store/db";

export interface ControlPlane {
  pool: pg.Pool;
  /** A connection string to `database` on the control plane's cluster. */
  url(database?: string): string;
  close(): Promise<void>;
}

export async function startControlPlane(): Promise<ControlPlane> {
  const cluster = await startCluster();
  try {
    await cluster.createDatabase("controlplane");
    const pool = createPool(cluster.url("controlplane"));
    await migrate(pool);
    return {
      pool,
      url: (database = "controlplane") => cluster.url(database),
      async close() {
        await pool.end().catch(() => undefined);
        await cluster.stop();
      },
    };
  } catch (e) {
    await cluster.stop().catch(() => undefined);
    throw e;
  }
}

/** A control plane for the tests of one file: started before them, closed after them; `cp()` inside a test. */
export function controlPlanePerFile(): () => ControlPlane {
  let cp: ControlPlane | undefined;
  beforeAll(async () => void (cp = await startControlPlane()), 120_000);
  afterAll(async () => await cp?.close(), 60_000);
  return () => cp!;
}
