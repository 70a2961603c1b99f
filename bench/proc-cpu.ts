// CPU seconds from /proc (Linux), for the benchmarks' accounting (engine,
// api): a process's own and its reaped children's, a PostgreSQL cluster's
// process tree, and the whole machine's busy time.
import { readdirSync, readFileSync } from "node:fs";

const CLK_TCK = 100;

interface Session {
  query(sql: string): Promise<{ rows: { pid: number }[] }>;
  end(): Promise<void>;
}

/** A process's parent, its own CPU seconds and those of its children it has reaped. */
function procStat(pid: number): { ppid: number; cpu: number; reaped: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, reaped: (Number(f[13]) + Number(f[14])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** A cluster's postmaster (the parent of a backend of it), whose process tree is the cluster's CPU. */
export async function findPostmaster(cluster: { connect(database?: string): Promise<Session> }): Promise<number | undefined> {
  const c = await cluster.connect("postgres");
  try {
    // Read while the session lives: its backend exits when it ends.
    const pid = Number((await c.query("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
    return procStat(pid)?.ppid;
  } finally {
    await c.end();
  }
}

/** The ids of the running processes: read once per sample, for clusterCpu. */
export function processIds(): string[] {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d));
}

/** A process and its children among `pids`: a cluster's processes, from its postmaster. */
export function processTree(parent: number, pids: readonly string[]): number[] {
  return [parent, ...pids.map(Number).filter((pid) => procStat(pid)?.ppid === parent)];
}

/** CPU seconds of a cluster: its postmaster's own, its reaped children's and its live children's (NaN when it is gone). */
export function clusterCpu(postmaster: number, pids: readonly string[]): number {
  const pm = procStat(postmaster);
  if (!pm) return NaN;
  let total = pm.cpu + pm.reaped;
  for (const pid of pids) {
    const s = procStat(Number(pid));
    if (s && s.ppid === postmaster) total += s.cpu;
  }
  return total;
}

/** Busy CPU seconds of the whole machine since boot. */
export function machineBusy(): number {
  try {
    const [, ...f] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = f.map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / CLK_TCK;
  } catch {
    return NaN;
  }
}
