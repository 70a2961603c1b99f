// Test support: the server on real listeners over three real PostgreSQL
// clusters (control plane, us-east-1 source, us-west-2 target) with the
// spec's two connections registered. Everything it creates is removed by
// close(), which also runs when start-up fails half way.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seedTenant, startCluster, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { startApp, type AppOptions, type RunningApp } from "../app";
import { createPool } from "../store/db";
import { issueToken, loadSigningKey } from "../transport/auth";

export const EAST = "550e8400-e29b-41d4-a716-446655440001";
export const WEST = "550e8400-e29b-41d4-a716-446655440002";

export interface Answer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface World {
  control: Cluster;
  east: Cluster;
  west: Cluster;
  /** The control-plane database. */
  pool: pg.Pool;
  /** A session on the source database, production_db. */
  source: pg.Client;
  dataDir: string;
  /** The destination policy's allow list of the world's servers: the source's and the target's cluster. */
  allowHosts: string[];
  token: string;
  /** The first server; restart() replaces it. */
  app: RunningApp;
  /** Another server on the same control plane (closed by close()). */
  startServer(options?: Partial<AppOptions>): Promise<RunningApp>;
  /** Closes a server started by this world (a shutdown: its leases are released). */
  stopServer(server: RunningApp): Promise<void>;
  /** Closes the first server and starts a new one in its place. */
  restart(options?: Partial<AppOptions>): Promise<RunningApp>;
  /** A REST call to `server` (default: the first server). */
  rest(method: string, path: string, body?: unknown, server?: { urls: { rest: string } }): Promise<Answer>;
  /** Creates a replication of the tenant's `tables` into a new database on the target; resolves its id. */
  createReplication(database: string, tables: string[], config?: Record<string, unknown>, server?: { urls: { rest: string } }): Promise<string>;
  close(): Promise<void>;
}

const TICK_MS = 200;

/** `app`: options of every server the world starts (each startServer() may add its own). */
export async function startWorld(options: { users?: number; app?: Partial<AppOptions> } = {}): Promise<World> {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  };
  try {
    const clusters = await Promise.allSettled([startCluster(), startCluster(), startCluster()]);
    for (const c of clusters) if (c.status === "fulfilled") cleanups.push(() => c.value.stop());
    const [control, east, west] = clusters.map((c) => {
      if (c.status === "rejected") throw c.reason;
      return c.value;
    }) as [Cluster, Cluster, Cluster];
    await control.createDatabase("controlplane");
    await Promise.all([east.createDatabase("production_db"), west.createDatabase("replica_db")]);
    const source = await east.connect("production_db");
    cleanups.push(() => source.end());
    await seedTenant(source, options.users ?? 1000);
    const pool = createPool(control.url("controlplane"));
    cleanups.push(() => pool.end());
    const dataDir = mkdtempSync(join(tmpdir(), "heliosdb-server-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    // The clusters listen on loopback, which the destination policy denies unless allowed: these two ports only.
    const allowHosts = [`${east.host}:${east.port}`, `${west.host}:${west.port}`];
    const servers = new Set<RunningApp>();
    cleanups.push(async () => {
      for (const s of servers) await s.close();
    });
    const startServer = async (extra: Partial<AppOptions> = {}) => {
      const server = await startApp({
        db: pool,
        dataDir,
        host: "127.0.0.1",
        port: 0,
        grpcPort: 0,
        tickMs: TICK_MS,
        allowHosts,
        log: () => undefined,
        ...options.app,
        ...extra,
      });
      servers.add(server);
      return server;
    };
    const token = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "test" });
    const world: World = {
      control,
      east,
      west,
      pool,
      source,
      dataDir,
      allowHosts,
      token,
      app: await startServer(),
      startServer,
      async stopServer(server) {
        if (servers.delete(server)) await server.close();
      },
      async restart(extra) {
        await world.stopServer(world.app);
        world.app = await startServer(extra);
        return world.app;
      },
      async rest(method, path, body, server = world.app) {
        const res = await fetch(`${server.urls.rest}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
      },
      async createReplication(database, tables, config = {}, server) {
        await west.createDatabase(database);
        const res = await world.rest("POST", "/replications", {
          tenant_id: "tenant-123",
          source: { connection_id: EAST, database: "production_db" },
          target: { connection_id: WEST, database },
          config: { qos_tier: "Premium", table_filter: tables.map((t) => `${t}.*`), ...config },
        }, server);
        if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
        return res.body.id as string;
      },
      close,
    };
    for (const [id, cluster, region, database] of [[EAST, east, "us-east-1", "production_db"], [WEST, west, "us-west-2", "replica_db"]] as const) {
      const res = await world.rest("POST", "/connections", {
        connection_id: id,
        host: cluster.host,
        port: cluster.port,
        user: cluster.user,
        password: cluster.password,
        database,
        sslmode: "disable",
        region,
        // tenant-123's own: its replications may use them in full (tests of grants register their own).
        owner_tenant_id: "tenant-123",
      });
      if (res.status !== 201) throw new Error(`register connection: ${res.status} ${JSON.stringify(res.body)}`);
    }
    return world;
  } catch (e) {
    await close();
    throw e;
  }
}
