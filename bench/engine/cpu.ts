// CPU seconds each side spends in a measured window, from /proc (Linux): a
// cluster's is its postmaster's own and its reaped children's (cutime,
// cstime) plus its live children's; the benchmark process's is
// process.cpuUsage() (the engine, or the pipe baseline, plus the benchmark's
// light polling). On 2 shared cores this shows what each contender costs.
import type { Cluster } from "../../packages/engine/src/testing/clusters";
import { clusterCpu as treeCpu, findPostmaster as postmasterOf, machineBusy, processIds } from "../proc-cpu";
import { round } from "./util";

const postmasters = new Map<Cluster, number>();

/** Finds the cluster's postmaster and remembers it for the CPU accounting; returns its pid. */
export async function findPostmaster(cluster: Cluster): Promise<number | undefined> {
  const pid = await postmasterOf(cluster);
  if (pid) postmasters.set(cluster, pid);
  return pid;
}

function clusterCpu(cluster: Cluster, pids: string[]): number {
  const postmaster = postmasters.get(cluster);
  return postmaster ? treeCpu(postmaster, pids) : NaN;
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

function cpuNow(clusters: { source: Cluster; target: Cluster }): Cpu {
  const pids = processIds();
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
