// What the fault suite's failover and migration cases share: a control plane
// and two clusters (us-east-1 and us-west-2), server processes on them (all
// killed at the end), a process's REST calls, and for each case a fresh
// database on both clusters with the tenant seeded on east's and its routing
// naming it — the two connections registered once, with the first process.
// close() removes everything, also after a failed case.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seedTenant, startCluster, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { expect } from "vitest";
import { startControlPlane, type ControlPlane } from "../../src/testing/control-plane";
import { installFailoverPauses } from "../../src/testing/failover-pauses";
import { startServerProcess, type ServerProcess, type ServerProcessOptions } from "../../src/testing/server-process";
import { EAST, WEST } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import type { RoutedWriters } from "../failover/writers";

export interface CutoverWorld {
  cp: ControlPlane;
  east: Cluster;
  west: Cluster;
  /** Stopped by close(). */
  readonly writers: RoutedWriters[];
  /** Ended by close(). */
  readonly sessions: pg.Client[];
  /** A server process on the world (a pause point, for a test to kill it there). */
  serve(options?: Pick<ServerProcessOptions, "failoverPause" | "migrationPause">): Promise<ServerProcess>;
  rest(p: ServerProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  clusterOf(connectionId: string): Cluster;
  /** `database` made on both clusters, the tenant seeded on east's (`users`), its routing naming it; the connections registered through `p` once. */
  placeTenant(database: string, users: number, p: ServerProcess): Promise<void>;
  close(): Promise<void>;
}

export async function startCutoverWorld(name: string): Promise<CutoverWorld> {
  const dataDir = mkdtempSync(join(tmpdir(), `heliosdb-${name}-`));
  const processes: ServerProcess[] = [];
  const writers: RoutedWriters[] = [];
  const sessions: pg.Client[] = [];
  let registered = false;
  let cp: ControlPlane | undefined;
  const clusters: Cluster[] = [];
  const close = async () => {
    for (const w of writers) await w.stop().catch(() => undefined);
    for (const s of sessions) await s.end().catch(() => undefined);
    for (const p of processes) await p.kill();
    await Promise.all(clusters.map((c) => c.stop().catch(() => undefined)));
    await cp?.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    cp = await startControlPlane();
    await installFailoverPauses(cp.pool);
    const started = await Promise.allSettled([startCluster(), startCluster()]);
    for (const c of started) if (c.status === "fulfilled") clusters.push(c.value);
    const [east, west] = started.map((c) => {
      if (c.status === "rejected") throw c.reason;
      return c.value;
    }) as [Cluster, Cluster];
    const token = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: name });
    const world: CutoverWorld = {
      cp,
      east,
      west,
      writers,
      sessions,
      async serve(options = {}) {
        const p = await startServerProcess({
          databaseUrl: cp!.url(),
          dataDir,
          tickMs: 200,
          leaseSeconds: 3,
          allowHosts: [`${east.host}:${east.port}`, `${west.host}:${west.port}`],
          ...options,
        });
        processes.push(p);
        return p;
      },
      async rest(p, method, path, body) {
        const res = await fetch(`${p.urls.rest}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : undefined };
      },
      clusterOf: (connectionId) => (connectionId === EAST ? east : west),
      async placeTenant(database, users, p) {
        await Promise.all([east.createDatabase(database), west.createDatabase(database)]);
        const seed = await east.connect(database);
        await seedTenant(seed, users).finally(() => seed.end());
        // The tenant's clients are on this database now.
        await cp!.pool.query(
          `INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)
           ON CONFLICT (tenant_id) DO UPDATE SET "primary" = EXCLUDED."primary", version = routing.version + 1, writes_blocked = false`,
          [JSON.stringify({ connectionId: EAST, database, schema: "public", region: "us-east-1" })],
        );
        if (registered) return;
        for (const [id, cluster, region] of [[EAST, east, "us-east-1"], [WEST, west, "us-west-2"]] as const) {
          const res = await world.rest(p, "POST", "/connections", {
            connection_id: id, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, sslmode: "disable", region, owner_tenant_id: "tenant-123",
          });
          expect(res.status, JSON.stringify(res.body)).toBe(201);
        }
        registered = true;
      },
      close,
    };
    return world;
  } catch (e) {
    await close();
    throw e;
  }
}
