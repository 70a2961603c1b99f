// Test support: the server's bin (heliosdb-replication-server) as a real
// process (bundled on the fly with esbuild from the current sources, so no
// build is needed), its output, and the PostgreSQL processes a data
// directory holds. Not for production use.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const PACKAGE = fileURLToPath(new URL("../..", import.meta.url));
let bundled: Promise<string> | undefined;

function bundle(): Promise<string> {
  bundled ??= (async () => {
    const result = await build({
      entryPoints: [join(PACKAGE, "src", "bin.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      packages: "external",
      logLevel: "silent",
    });
    const code = result.outputFiles[0]!.contents;
    // Inside the package, so the bundle's imports resolve from node_modules and
    // the docs handler finds the package's folder; named by its content, so
    // test files share one file per version of the sources.
    const cache = join(PACKAGE, "node_modules", ".cache");
    mkdirSync(cache, { recursive: true });
    const file = join(cache, `heliosdb-server-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.mjs`);
    if (!existsSync(file)) {
      writeFileSync(`${file}.${process.pid}`, code);
      renameSync(`${file}.${process.pid}`, file);
    }
    return file;
  })();
  return bundled;
}

export interface ServerProcess {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they came. */
  output(): string;
  /** The REST base URL (`http://127.0.0.1:PORT/v1`), once printed. */
  rest?: string;
  /** Resolves when the server answers GET /v1/ready with 200. */
  ready(ms?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` unless it has exited. */
  kill(signal?: NodeJS.Signals): void;
}

export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const script = await bundle();
  const child = spawn(process.execPath, [script, ...args], { cwd: PACKAGE, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const server: ServerProcess = {
    child,
    output: () => output,
    exited: new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal }))),
    kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async ready(ms = 60_000) {
      const until = Date.now() + ms;
      let exited = false;
      void server.exited.then(() => (exited = true));
      for (;;) {
        if (exited) throw new Error(`the server exited before it was ready:\n${output}`);
        if (Date.now() > until) throw new Error(`the server was not ready after ${ms} ms:\n${output}`);
        server.rest ??= /REST, Connect, gRPC-web\s+(http:\/\/\S+)/.exec(output)?.[1]?.concat("/v1");
        if (server.rest && (await fetch(`${server.rest}/ready`).then((r) => r.ok, () => false))) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  return server;
}

/** Runs the bin to its end (for commands that end by themselves). */
export async function runServer(args: string[]): Promise<{ code: number | null; output: string; stdout: string; stderr: string }> {
  const script = await bundle();
  const child = spawn(process.execPath, [script, ...args], { cwd: PACKAGE, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let output = "";
  child.stdout.on("data", (d) => ((stdout += d), (output += d)));
  child.stderr.on("data", (d) => ((stderr += d), (output += d)));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  return { code, output, stdout, stderr };
}

/** A data directory the postgres user can write (as root PostgreSQL runs as postgres). */
export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "heliosdb-server-"));
  chmodSync(dir, 0o777);
  return dir;
}

/** Pids of the PostgreSQL postmasters started on a data directory under `dir`. */
export function postmastersUnder(dir: string): number[] {
  return processes()
    .filter((p) => p.args[0]?.endsWith("/postgres") && p.args[1] === "-D" && p.args[2]?.startsWith(`${dir}/`))
    .map((p) => p.pid);
}

/** Every process's pid, parent and arguments (Linux /proc). */
export function processes(): { pid: number; ppid: number; args: string[] }[] {
  const out: { pid: number; ppid: number; args: string[] }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (state === "Z") continue;
      out.push({ pid: Number(name), ppid: Number(ppid), args: readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").filter(Boolean) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
