// Starts server-main.ts in a child process (bundled on the fly with esbuild,
// so it runs the current sources), for tests that kill a server outright.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
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
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      proc.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out.slice(0, out.indexOf("\n")));
      });
      proc.once("exit", (code) => reject(new Error(`the server process exited (${code}): ${stderr.slice(-2000)}`)));
    });
    const started = JSON.parse(line) as { rest: string; grpc: string; nodeId: string };
    return { urls: { rest: started.rest, grpc: started.grpc }, nodeId: started.nodeId, pid: proc.pid!, kill };
  } catch (e) {
    await kill();
    throw e;
  }
}
