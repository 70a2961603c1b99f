// Starts server-main.ts in a child process (bundled on the fly with esbuild,
// so it runs the current sources), for tests that kill a server outright.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { PausePoint } from "../controller/failover/deps";
import type { MigrationPausePoint } from "../controller/migration/deps";
import type { WebSocketOptions } from "../transport/ws";

export interface ServerProcess {
  urls: { rest: string; grpc: string };
  nodeId: string;
  pid: number;
  /**
   * After a full collection: `held`, the bytes its heap and buffers use, and
   * `rss`, its resident size once the collector has had time to hand freed
   * pages back (the allocator keeps some: see the WebSocket test).
   */
  memory(): Promise<{ held: number; rss: number }>;
  /** Kills the process (SIGKILL: no shutdown, no lease released) and removes its bundle. */
  kill(): Promise<void>;
}

export interface ServerProcessOptions {
  databaseUrl: string;
  dataDir: string;
  tickMs: number;
  leaseSeconds?: number;
  /** The destinations its connections may reach on loopback (the test's clusters). */
  allowHosts?: string[];
  webSocket?: WebSocketOptions;
  /** Runs the test job kinds (testing/test-jobs.ts). */
  testJobs?: boolean;
  /** Holds every failover at this point of its steps (testing/failover-pauses.ts). */
  failoverPause?: PausePoint;
  /** Holds every migration at this point of its phases (testing/failover-pauses.ts). */
  migrationPause?: MigrationPausePoint;
}

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  // Inside the repository, so that the bundle's imports resolve from its node_modules.
  const cache = fileURLToPath(new URL("../../../../node_modules/.cache/", import.meta.url));
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, "heliosdb-server-"));
  const outfile = join(dir, "server.mjs");
  let child: ReturnType<typeof spawn> | undefined;
  const kill = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await build({
      entryPoints: [fileURLToPath(new URL("./server-main.ts", import.meta.url))],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile,
      packages: "external",
      logLevel: "silent",
    });
    // --expose-gc: a test can ask for a full collection (SIGUSR2, server-main.ts) before it reads the process's memory.
    const proc = spawn(process.execPath, ["--expose-gc", outfile], { env: { ...process.env, HELIOSDB_TEST_SERVER: JSON.stringify(options) }, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let stderr = "";
    proc.stderr!.on("data", (d) => (stderr += d));
    // Its stdout is lines of JSON: the first says where it serves, the others answer memory().
    const lines: string[] = [];
    const waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
    let exited: Error | undefined;
    proc.once("exit", (code) => {
      exited = new Error(`the server process exited (${code}): ${stderr.slice(-2000)}`);
      for (const w of waiting.splice(0)) w.reject(exited);
    });
    let out = "";
    proc.stdout!.on("data", (d) => {
      out += d;
      for (let end = out.indexOf("\n"); end >= 0; end = out.indexOf("\n")) {
        const line = out.slice(0, end);
        out = out.slice(end + 1);
        const taker = waiting.shift();
        if (taker) taker.resolve(line);
        else lines.push(line);
      }
    });
    const nextLine = () =>
      new Promise<string>((resolve, reject) => {
        const line = lines.shift();
        if (line !== undefined) resolve(line);
        else if (exited) reject(exited);
        else waiting.push({ resolve, reject });
      });
    const started = JSON.parse(await nextLine()) as { rest: string; grpc: string; nodeId: string };
    const memory = async () => {
      const answer = nextLine();
      proc.kill("SIGUSR2");
      const { heapUsed, external } = (JSON.parse(await answer) as { memory: { heapUsed: number; external: number } }).memory;
      await new Promise((r) => setTimeout(r, 500));
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]) * 1024;
      return { held: heapUsed + external, rss };
    };
    return { urls: { rest: started.rest, grpc: started.grpc }, nodeId: started.nodeId, pid: proc.pid!, memory, kill };
  } catch (e) {
    await kill();
    throw e;
  }
}
