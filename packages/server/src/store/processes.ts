// What the operating system says about a process: alive or not, its parent
// and its command line. Recovery after a crash decides from this whether a
// PostgreSQL left on the data directory may be stopped, so a pid alone (which
// the kernel reuses) is never trusted: the command line and the parent are.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** The arguments, argv[0] first. From `ps` (no /proc) they are split on spaces. */
  args: string[];
}

const PROC = existsSync("/proc/self/stat");

/** The process, or undefined when it is gone (an unreaped zombie counts as gone). */
export function processInfo(pid: number): ProcessInfo | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return PROC ? fromProc(pid) : fromPs(pid);
}

export function isAlive(pid: number): boolean {
  return processInfo(pid) !== undefined;
}

/** Resolves true once the process is gone, false if it still runs after `ms`. */
export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (isAlive(pid)) {
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Sends a signal; false when the process is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false; // 0 and negatives would signal whole process groups
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
}

function fromProc(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (state === "Z" || state === "X") return undefined;
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    if (args.at(-1) === "") args.pop();
    return { pid, ppid: Number(ppid), args };
  } catch {
    return undefined;
  }
}

function fromPs(pid: number): ProcessInfo | undefined {
  try {
    const out = execFileSync("ps", ["-o", "stat=,ppid=,args=", "-p", String(pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const [state, ppid, ...args] = out.split(/\s+/);
    if (!state || state.startsWith("Z")) return undefined;
    return { pid, ppid: Number(ppid), args };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return undefined; // ps exits 1 when there is no such process
    // No ps either: alive or not, nothing more (a postmaster then cannot be recognized, and is left to PostgreSQL's own check).
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return undefined;
    }
    return { pid, ppid: 0, args: [] };
  }
}
