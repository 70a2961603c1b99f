// Bundles a benchmark's entry points with esbuild (our sources and the
// workspace packages' sources; npm dependencies stay external) into
// bench/<name>/.build/, so their imports resolve from the workspace's
// node_modules, and runs its `main` with the command line passed through.
// The benchmark learns what it measures from BENCH_REVISION (the commit, any
// uncommitted change to the bundled sources, a digest of exactly the
// sources bundled) and the repository root from BENCH_ROOT.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

// Always the current code: the workspace packages from source, not their dist/.
const workspaceFromSource = {
  name: "workspace-from-source",
  setup(b) {
    const sources = {
      "@heliosdb/replication-proto": "packages/proto/src/index.ts",
      "@heliosdb/replication-engine": "packages/engine/src/index.ts",
      "@heliosdb/replication-engine/testing": "packages/engine/src/testing/index.ts",
    };
    b.onResolve({ filter: /^@heliosdb\/replication-(proto|engine)(\/testing)?$/ }, (a) => ({ path: join(root, sources[a.path]) }));
  },
};

// Read-only git: no index refresh, no lock.
const git = (...a) => {
  try {
    const env = { ...process.env, GIT_OPTIONAL_LOCKS: "0" };
    return execFileSync("git", a, { cwd: root, env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "";
  }
};

/** Bundles bench/<name>/<entry>.ts for each entry and runs main.mjs; exits with its status. */
export async function bundleAndRun(name, entries) {
  const outdir = join(root, "bench", name, ".build");
  mkdirSync(outdir, { recursive: true });
  const result = await build({
    entryPoints: Object.fromEntries(entries.map((e) => [e, join(root, "bench", name, `${e}.ts`)])),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outdir,
    outExtension: { ".js": ".mjs" },
    sourcemap: "linked",
    packages: "external",
    plugins: [workspaceFromSource],
    logLevel: "warning",
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs).filter((f) => f.startsWith("packages/")).sort();
  const digest = createHash("sha256");
  for (const f of inputs) digest.update(f).update("\0").update(readFileSync(join(root, f))).update("\0");
  const paths = ["packages/server/src", "packages/engine/src", "packages/proto/src"];
  const changed = [...git("diff", "--name-only", "HEAD", "--", ...paths).split("\n"), ...git("ls-files", "--others", "--exclude-standard", "--", ...paths).split("\n")]
    .filter((f) => f && inputs.includes(f));
  const revision = { commit: git("rev-parse", "--short=12", "HEAD") || "unknown", changed, sourcesSha256: digest.digest("hex").slice(0, 16) };
  const child = spawn(process.execPath, [...process.execArgv, "--enable-source-maps", join(outdir, "main.mjs"), ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, BENCH_REVISION: JSON.stringify(revision), BENCH_ROOT: root },
  });
  const forward = (signal) => () => child.kill(signal);
  process.on("SIGINT", forward("SIGINT"));
  process.on("SIGTERM", forward("SIGTERM"));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
