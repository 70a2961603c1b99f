// CPU seconds each side spends in a measured window, from /proc (Linux): a
// cluster's is its postmaster's own and its reaped children's (cutime,
// cstime) plus its live children's; the benchmark process's is
// process.cpuUsage() (the engine, or the pipe baseline, plus the benchmark's
// light polling). On 2 shared cores this shows what each contender costs.
import { readdirSync, readFileSync } from "node:fs";
import type { Cluster } from "../../packages/engine/src/testing/clusters";
import { round } from "./util";

const CLK_TCK = 100;
const postmasters = new Map<Cluster, number>();

function procStat(pid: number): { ppid: number; cpu: number; reaped: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, reaped: (Number(f[13]) + Number(f[14])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** Finds the cluster's postmaster (the parent of a backend of it), whose process tree is the cluster's CPU; returns its pid. */
export async function findPostmaster(cluster: Cluster): Promise<number | undefined> {
  const c = await cluster.connect("postgres");
  try {
    // Read while the session lives: its backend exits when it ends.
    const pid = Number((await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
    const ppid = procStat(pid)?.ppid;
    if (ppid) postmasters.set(cluster, ppid);
    return ppid;
  } finally {
    await c.end();
  }
}

function clusterCpu(cluster: Cluster, pids: string[]): number {
  const postmaster = postmasters.get(cluster);
  const pm = postmaster ? procStat(postmaster) : undefined;
  if (!pm) return NaN;
  let total = pm.cpu + pm.reaped;
  for (const pid of pids) {
    const s = procStat(Number(pid));
    if (s && s.ppid === postmaster) total += s.cpu;
  }
  return total;
}

interface Cpu {
  source: number;
  target: number;
  node: number;
  /** Of which in the kernel (system time: socket reads and writes, mostly). */
  nodeSystem: number;
  /** Busy CPU seconds of the whole machine (every process), from /proc/stat. */
  machine: number;
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

function cpuNow(clusters: { source: Cluster; target: Cluster }): Cpu {
  const pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  const { user, system } = process.cpuUsage();
  return {
    source: clusterCpu(clusters.source, pids),
    target: clusterCpu(clusters.target, pids),
    node: (user + system) / 1e6,
    nodeSystem: system / 1e6,
    machine: machineBusy(),
  };
}

/** Starts counting; the returned function gives the CPU seconds since, as extra keys. */
export function cpuMeter(clusters: { source: Cluster; target: Cluster }): () => Record<string, number> {
  const start = cpuNow(clusters);
  return () => {
    const end = cpuNow(clusters);
    const ours = end.source - start.source + (end.target - start.target) + (end.node - start.node);
    return {
      cpu_source_s: round(end.source - start.source, 2) ?? NaN,
      cpu_target_s: round(end.target - start.target, 2) ?? NaN,
      cpu_node_s: round(end.node - start.node, 2) ?? NaN,
      cpu_node_system_s: round(end.nodeSystem - start.nodeSystem, 2) ?? NaN,
      // Everything else the machine ran meanwhile: other work sharing the cores skews the run.
      cpu_other_s: round(Math.max(0, end.machine - start.machine - ours), 2) ?? NaN,
    };
  };
}
