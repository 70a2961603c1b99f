// --demo: two embedded PostgreSQL clusters standing for the regions
// us-east-1 and us-west-2, the spec's tenants and connection ids, routing,
// and a writer that keeps the data moving, following each tenant's routing
// (a failover moves it to the new primary) — so that the spec's curl
// examples work as written against http://localhost:8080/v1. The two
// connections are the operator's, granted as the tenants are placed:
// tenant-123 production_db on us-east-1 and replica_db on us-west-2,
// tenant-456 its own database, tenant_456_db, on us-east-1.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@heliosdb/replication-engine";
import pg from "pg";
import type { ConnectionGrantStore } from "../store/connection-grants";
import type { ConnectionStore } from "../store/connections";
import { startEmbedded, type EmbeddedDatabase } from "../store/embedded";
import { RoutingStore } from "../store/routing";
import { RoutedPool } from "./routed-pool";
import { seedTenant123, seedTenant456, startDemoWriter, type DemoAck, type DemoWriter } from "./seed";

export const DEMO_SOURCE_ID = "550e8400-e29b-41d4-a716-446655440001";
export const DEMO_TARGET_ID = "550e8400-e29b-41d4-a716-446655440002";

/** The demo's placement: which tenant may use which database through which connection. */
export const DEMO_GRANTS = [
  { connectionId: DEMO_SOURCE_ID, tenantId: "tenant-123", databases: ["production_db"], schemas: ["*"] },
  { connectionId: DEMO_TARGET_ID, tenantId: "tenant-123", databases: ["replica_db"], schemas: ["*"] },
  { connectionId: DEMO_SOURCE_ID, tenantId: "tenant-456", databases: ["tenant_456_db"], schemas: ["*"] },
];

export interface Demo {
  east: EmbeddedDatabase;
  west: EmbeddedDatabase;
  /** The file with the demo's connection strings (passwords included; mode 0600). */
  connectionStrings: string;
  /** The destination policy's allow entries for the two clusters (loopback, denied by default). */
  destinations: string[];
  /** The background writer (stopped by stop()). */
  writer: DemoWriter;
  /** Stops the writer and the two clusters, within ms (default 15 s). */
  stop(ms?: number): Promise<void>;
}

export async function startDemo(
  dataDir: string,
  db: pg.Pool,
  stores: { connections: ConnectionStore; grants: ConnectionGrantStore },
  log: (line: string) => void,
  options: { writerIntervalMs?: number; onAcknowledged?: (ack: DemoAck) => void } = {},
): Promise<Demo> {
  const { connections, grants } = stores;
  const password = secret(join(dataDir, "demo.password"));
  const [east, west] = await Promise.all([
    startEmbedded(join(dataDir, "demo", "us-east-1"), password, { log }),
    startEmbedded(join(dataDir, "demo", "us-west-2"), password, { log }),
  ]);
  const admin = (cluster: EmbeddedDatabase, database: string) => connect({ connectionString: cluster.url(database) });
  for (const [cluster, names] of [[east, ["production_db", "tenant_456_db"]], [west, ["replica_db"]]] as const) {
    const client = await admin(cluster, "postgres");
    for (const name of names) {
      const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
      if (!exists.rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    }
    await client.end();
  }
  const tenant123 = await admin(east, "production_db");
  const tenant456 = await admin(east, "tenant_456_db");
  await seedTenant123(tenant123);
  await seedTenant456(tenant456);
  await Promise.all([tenant123.end(), tenant456.end()]);

  for (const [id, cluster, region, database] of [
    [DEMO_SOURCE_ID, east, "us-east-1", "production_db"],
    [DEMO_TARGET_ID, west, "us-west-2", "replica_db"],
  ] as const) {
    if (await connections.get(id)) continue;
    await connections.insert(
      { id, name: `demo ${region}`, engine: "PostgreSQL", host: cluster.host, port: cluster.port, user: cluster.user, database, sslmode: "disable", region },
      cluster.password,
    );
  }
  // The demo clusters get a new port at every start: keep the registered address current.
  await db.query("UPDATE connections SET port = $2 WHERE id = $1", [DEMO_SOURCE_ID, east.port]);
  await db.query("UPDATE connections SET port = $2 WHERE id = $1", [DEMO_TARGET_ID, west.port]);
  // The demo's placement, granted when missing (at every start); a grant an operator changed is kept.
  for (const grant of DEMO_GRANTS) await grants.putIfMissing(grant);
  for (const [tenant, database] of [["tenant-123", "production_db"], ["tenant-456", "tenant_456_db"]]) {
    await db.query(
      `INSERT INTO routing (tenant_id, "primary") VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING`,
      [tenant, JSON.stringify({ connectionId: DEMO_SOURCE_ID, database, schema: "public", region: "us-east-1" })],
    );
  }
  // Each tenant's writes follow its routing: a failover or a migration moves them with the tenant's primary.
  const routing = new RoutingStore(db);
  const routed = (tenantId: string) =>
    new RoutedPool({
      tenantId,
      routing: () => routing.get(tenantId),
      resolve: (primary) => connections.clientConfig(primary.connectionId, primary.database),
      log,
    });
  const writer = startDemoWriter({ tenant123: routed("tenant-123"), tenant456: routed("tenant-456") }, log, {
    ...(options.writerIntervalMs ? { intervalMs: options.writerIntervalMs } : {}),
    ...(options.onAcknowledged ? { onAcknowledged: options.onAcknowledged } : {}),
  });
  // The connection strings hold the password: readable by the server's user only.
  const connectionStrings = join(dataDir, "demo.json");
  writeFileSync(connectionStrings, `${JSON.stringify({ source: east.url("production_db"), target: west.url("replica_db") }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(connectionStrings, 0o600);
  return {
    east,
    west,
    connectionStrings,
    destinations: [`${east.host}:${east.port}`, `${west.host}:${west.port}`],
    writer,
    async stop(ms = 15_000) {
      // The writer may wait on a database that is gone: it gets a small part of the time.
      const started = Date.now();
      await writer.stop(Math.min(2_000, ms / 4));
      const left = Math.max(1_000, ms - (Date.now() - started));
      await Promise.all([east.stop(left), west.stop(left)]);
    },
  };
}

/** A random password kept in a file (mode 0600), the same at every start. */
export function secret(file: string): string {
  if (!existsSync(file)) writeFileSync(file, randomBytes(18).toString("base64url"), { mode: 0o600, flag: "wx" });
  return readFileSync(file, "utf8").trim();
}
