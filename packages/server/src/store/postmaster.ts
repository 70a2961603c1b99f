// A PostgreSQL left on a data directory by a server that died (kill -9, OOM,
// power cut of the process): found through postmaster.pid, checked against
// the process table, and stopped — unless the server that started it still
// lives, which is then named in the error.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processInfo, signal, waitForExit, type ProcessInfo } from "./processes";

/** Beside the data directory: which server process started the cluster. */
export const OWNER_FILE = "owner.json";

export interface ClusterOwner {
  /** The server process that started the cluster (the postmaster's parent). */
  pid: number;
  /** Its watchdog, which stops the cluster when the server dies. */
  watchdogPid?: number;
  startedAt: string;
}

/** postmaster.pid's first lines: the postmaster's pid and its data directory. */
export function readPostmasterPid(dataDir: string): { pid: number; dataDir: string } | undefined {
  try {
    const [pid, dir] = readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n");
    return { pid: Number(pid), dataDir: dir ?? "" };
  } catch {
    return undefined;
  }
}

/** The postmaster running on dataDir, or undefined. The pid in postmaster.pid may have been reused: the process must be a postgres started with -D dataDir. */
export function runningPostmaster(dataDir: string): ProcessInfo | undefined {
  const lock = readPostmasterPid(dataDir);
  const info = lock && processInfo(lock.pid);
  if (!info) return undefined;
  return ` ${info.args.join(" ")} `.includes(` -D ${dataDir} `) ? info : undefined;
}

/**
 * Fast shutdown (SIGINT: sessions ended, checkpoint written), then immediate
 * shutdown (SIGQUIT: crash recovery at the next start, nothing lost) if the
 * fast one takes longer than two thirds of `ms`. True once it is gone.
 */
export async function stopPostmaster(pid: number, ms: number): Promise<boolean> {
  if (!signal(pid, "SIGINT")) return true;
  if (await waitForExit(pid, (ms * 2) / 3)) return true;
  if (!signal(pid, "SIGQUIT")) return true;
  return waitForExit(pid, ms / 3);
}

export function readOwner(dir: string): ClusterOwner | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, OWNER_FILE), "utf8")) as ClusterOwner;
  } catch {
    return undefined;
  }
}

export function writeOwner(dir: string, owner: ClusterOwner): void {
  writeFileSync(join(dir, OWNER_FILE), `${JSON.stringify(owner)}\n`);
}

/**
 * Before a start on dataDir: stops a postmaster whose server is gone, refuses
 * when its server still runs. A stale postmaster.pid of a postmaster that is
 * gone is left to PostgreSQL, which replaces it at start (it checks the pid
 * and the shared memory itself).
 */
export async function clearLeftover(dir: string, dataDir: string, name: string, log: (line: string) => void): Promise<void> {
  const running = runningPostmaster(dataDir);
  if (!running) {
    const stale = existsSync(join(dataDir, "postmaster.pid")) && readPostmasterPid(dataDir);
    if (stale) log(`embedded PostgreSQL "${name}": ${dataDir} holds the postmaster.pid of a PostgreSQL that is gone (pid ${stale.pid}); PostgreSQL replaces it at start`);
    return;
  }
  if (running.ppid === process.pid) {
    throw new Error(`embedded PostgreSQL "${name}" (${dataDir}) is already running in this process (pid ${running.pid}); stop it before starting it again`);
  }
  // The postmaster stays the child of the server that started it until that
  // server dies; then it is re-parented (to init or a subreaper).
  const owner = readOwner(dir);
  const orphaned = owner ? running.ppid !== owner.pid : running.ppid === 1;
  if (!orphaned) {
    const parent = processInfo(running.ppid);
    throw new Error(
      `embedded PostgreSQL "${name}": ${dataDir} is in use by PostgreSQL (pid ${running.pid}) of a server that is still running ` +
        `(pid ${running.ppid}${parent ? `: ${parent.args.join(" ").slice(0, 160)}` : ""}). ` +
        `Stop that server first, or give this one another --data-dir.`,
    );
  }
  log(`embedded PostgreSQL "${name}": stopping the PostgreSQL (pid ${running.pid}) left running on ${dataDir} by a server that is gone${owner ? ` (pid ${owner.pid})` : ""}`);
  if (!(await stopPostmaster(running.pid, 30_000))) {
    throw new Error(`embedded PostgreSQL "${name}": the PostgreSQL (pid ${running.pid}) left running on ${dataDir} did not stop within 30 s; stop it (kill -QUIT ${running.pid}) and start the server again`);
  }
}
