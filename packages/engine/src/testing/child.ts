// Starts runner.ts in a child process (bundled on the fly with esbuild, so it
// always runs the current sources) and follows what it prints.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

let bundled: Promise<string> | undefined;

function bundle(): Promise<string> {
  bundled ??= (async () => {
    // Inside the package, so the bundle's imports resolve from its node_modules.
    const cache = fileURLToPath(new URL("../../node_modules/.cache/", import.meta.url));
    mkdirSync(cache, { recursive: true });
    const outfile = join(mkdtempSync(join(cache, "heliosdb-runner-")), "runner.mjs");
    await build({
      entryPoints: [fileURLToPath(new URL("./runner.ts", import.meta.url))],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile,
      // Dependencies load from node_modules as usual; only our sources are bundled.
      packages: "external",
      logLevel: "silent",
    });
    return outfile;
  })();
  return bundled;
}

export interface RunnerProcess {
  child: ChildProcess;
  /** Every JSON line printed so far. */
  lines: Record<string, unknown>[];
  /** Resolves with the first line that `match` accepts. */
  waitFor(match: (line: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startRunner(spec: object): Promise<RunnerProcess> {
  const script = await bundle();
  const child = spawn(process.execPath, [script], {
    cwd: fileURLToPath(new URL("../..", import.meta.url)),
    env: { ...process.env, HELIOSDB_RUNNER_SPEC: JSON.stringify(spec) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buffered = "";
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    for (const part of parts) {
      const line = JSON.parse(part) as Record<string, unknown>;
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return {
    child,
    lines,
    waitFor(match, ms = 60_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`runner: no matching line in ${ms} ms; stderr: ${stderr.slice(-2000)}`)), ms);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`runner exited (${child.exitCode ?? child.signalCode}); stderr: ${stderr.slice(-2000)}`));
        });
      });
    },
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
