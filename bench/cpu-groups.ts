// Each party of a benchmark in a CPU group of its own (Linux cgroup v1 `cpu`
// controller, equal cpu.shares): the source cluster, the target cluster, the
// node. In production they run on machines of their own; here they share 2
// cores, and the kernel's fair scheduler shares CPU per runnable thread. With
// 100 tenants on one source, every commit wakes 100 walsenders: a
// single-threaded node then gets about one hundredth of the machine however
// little it asks for, while the native baseline's 100 apply workers get one
// share each. A group per party shares the machine per party instead, the
// nearest this host comes to separate machines; both contenders run in the
// same groups, and a party that needs less leaves the rest to the others.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = "/sys/fs/cgroup/cpu";

export interface CpuGroups {
  /** Moves processes into the named group; their children started later stay in it. Gone processes are skipped. */
  join(name: string, pids: readonly number[]): void;
  /** Moves every process left in the groups back and removes the groups. Idempotent. */
  remove(): void;
}

function move(pid: number, procs: string): void {
  try {
    writeFileSync(procs, String(pid));
  } catch (e) {
    // The process exited since it was listed.
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
  }
}

/** Creates the groups under a directory of this process's own, or says why it cannot. */
export function cpuGroups(names: readonly string[]): CpuGroups | { unavailable: string } {
  if (!existsSync(join(ROOT, "cgroup.procs"))) return { unavailable: `no cgroup v1 cpu controller at ${ROOT}` };
  const top = join(ROOT, `heliosdb-bench-${process.pid}`);
  try {
    for (const name of names) mkdirSync(join(top, name), { recursive: true });
  } catch (e) {
    return { unavailable: `cannot create ${top}: ${(e as Error).message}` };
  }
  let removed = false;
  const groups: CpuGroups = {
    join(name, pids) {
      if (!names.includes(name)) throw new Error(`no CPU group ${name}`);
      for (const pid of pids) move(pid, join(top, name, "cgroup.procs"));
    },
    remove() {
      if (removed) return;
      removed = true;
      for (const name of names) {
        const dir = join(top, name);
        if (!existsSync(dir)) continue;
        for (const pid of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) move(Number(pid), join(ROOT, "cgroup.procs"));
        rmdirSync(dir);
      }
      rmdirSync(top);
    },
  };
  // Whatever ends the process, the groups do not outlive it.
  process.once("exit", () => {
    try {
      groups.remove();
    } catch (e) {
      process.stderr.write(`CPU groups under ${top} not removed: ${(e as Error).message}\n`);
    }
  });
  return groups;
}
