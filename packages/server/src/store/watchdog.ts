// The embedded clusters are children of the server, but a child outlives a
// parent killed with SIGKILL. A tiny process per server, detached from it,
// holds the read end of a pipe from the server; the kernel closes the pipe
// however the server dies, and the watchdog then stops the clusters it was
// told about (fast shutdown, immediate after 30 s). Not covered: the watchdog
// itself killed with SIGKILL or SIGTERM — the next start stops what is left
// (postmaster.ts).
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";

// Plain CommonJS for `node -e`, so it needs no file of its own in any build.
// A cluster is stopped only while its postmaster.pid still names the pid it
// was registered with and that pid is a postgres on the same directory.
const SCRIPT = `// heliosdb-replication-server watchdog: stops the embedded PostgreSQL when its server dies
const fs = require("fs");
const watched = new Map();
let buffered = "";
let stopping = false;
process.on("SIGINT", () => undefined);
process.on("SIGHUP", () => undefined);
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buffered += chunk;
  for (let i; (i = buffered.indexOf("\\n")) >= 0; buffered = buffered.slice(i + 1)) {
    const m = JSON.parse(buffered.slice(0, i));
    if (m.watch) watched.set(m.watch, m.pid); else watched.delete(m.unwatch);
  }
});
process.stdin.on("end", stopAll);
process.stdin.on("error", stopAll);
function running(dataDir, pid) {
  try {
    if (Number(fs.readFileSync(dataDir + "/postmaster.pid", "utf8").split("\\n")[0]) !== pid) return false;
  } catch { return false; }
  try {
    return (" " + fs.readFileSync("/proc/" + pid + "/cmdline", "utf8").split("\\0").join(" ") + " ").includes(" -D " + dataDir + " ");
  } catch {
    if (fs.existsSync("/proc/self")) return false;
    try { process.kill(pid, 0); return true; } catch { return false; }
  }
}
function kill(pid, sig) { try { process.kill(pid, sig); } catch {} }
function stopAll() {
  if (stopping) return;
  stopping = true;
  const left = () => [...watched].filter(([dir, pid]) => running(dir, pid));
  for (const [, pid] of left()) kill(pid, "SIGINT");
  const until = Date.now() + 30000;
  setInterval(() => {
    const still = left();
    if (still.length && Date.now() < until) return;
    for (const [, pid] of still) kill(pid, "SIGQUIT");
    process.exit(0);
  }, 200);
}
`;

let watchdog: ChildProcess | undefined;
const watched = new Set<string>();

/** Asks this process's watchdog (started at the first call) to stop the postmaster of dataDir if this process dies. Returns the watchdog's pid, undefined where it could not start. */
export function watch(dataDir: string, postmasterPid: number, log: (line: string) => void): number | undefined {
  if (postmasterPid <= 0) return undefined;
  watched.add(dataDir);
  const pid = startWatchdog(log);
  watchdog?.stdin?.write(`${JSON.stringify({ watch: dataDir, pid: postmasterPid })}\n`);
  return pid;
}

function startWatchdog(log: (line: string) => void): number | undefined {
  if (watchdog) return watchdog.pid;
  try {
    const child = spawn(process.execPath, ["-e", SCRIPT, "heliosdb-watchdog", String(process.pid)], {
      detached: true, // its own session: a Ctrl-C or SIGHUP to the server's group does not reach it
      stdio: ["pipe", "ignore", "ignore"],
      cwd: "/",
    });
    child.on("error", (e) => log(`the watchdog that stops the embedded PostgreSQL if this server dies did not start: ${e.message}`));
    child.stdin!.on("error", () => undefined); // a watchdog gone: the next start stops what is left
    // Neither the child nor the pipe keeps this process alive.
    child.unref();
    (child.stdin as Socket).unref();
    watchdog = child;
    return child.pid;
  } catch (e) {
    log(`the watchdog that stops the embedded PostgreSQL if this server dies did not start: ${(e as Error).message}`);
    return undefined;
  }
}

export function unwatch(dataDir: string): void {
  if (!watched.delete(dataDir)) return;
  watchdog?.stdin?.write(`${JSON.stringify({ unwatch: dataDir })}\n`);
  if (watched.size === 0 && watchdog) {
    // Nothing left to guard: the watchdog exits at the end of its input.
    watchdog.stdin?.end();
    watchdog = undefined;
  }
}
