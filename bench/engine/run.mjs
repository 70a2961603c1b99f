// Bundles bench/engine/main.ts with esbuild (the benchmark, the engine's and
// the proto package's sources; npm dependencies stay external) and runs it,
// passing the command line through. The bundle is written inside
// packages/engine's node_modules (as the engine's test runner does), so its
// imports resolve from the workspace's node_modules.
//
// --rev=<commit>: measure the engine and proto sources of that commit (read
// with `git archive`, nothing in the checkout changes) instead of the
// working tree's.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cache = join(root, "packages/engine/node_modules/.cache/heliosdb-bench");
mkdirSync(cache, { recursive: true });
const outfile = join(cache, "engine-bench.mjs");
const SOURCES = ["packages/engine/src", "packages/proto/src"];

// Read-only git: no index refresh, no lock.
const git = (args, options = {}) => {
  try {
    const env = { ...process.env, GIT_OPTIONAL_LOCKS: "0" };
    return execFileSync("git", args, { cwd: root, env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], ...options }).trim();
  } catch {
    return "";
  }
};

const argv = process.argv.slice(2);
const revArg = argv.find((a) => a.startsWith("--rev="));
let sourceRoot = root;
if (revArg) {
  const commit = git(["rev-parse", "--verify", `${revArg.slice("--rev=".length)}^{commit}`]);
  if (!commit) {
    console.error(`unknown revision: ${revArg}`);
    process.exit(2);
  }
  sourceRoot = join(cache, `rev-${commit.slice(0, 12)}`);
  if (!existsSync(join(sourceRoot, "packages/engine/src/index.ts"))) {
    rmSync(sourceRoot, { recursive: true, force: true });
    mkdirSync(sourceRoot, { recursive: true });
    execFileSync("sh", ["-c", `git archive ${commit} ${SOURCES.join(" ")} | tar -x -C '${sourceRoot}'`], {
      cwd: root,
      env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" },
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
}

// The engine's and proto's sources: the working tree's, or the commit's. The
// proto package from source, not its dist/, so it is always the current contract.
const sources = {
  name: "engine-sources",
  setup(b) {
    b.onResolve({ filter: /^@heliosdb\/replication-proto$/ }, () => ({ path: join(sourceRoot, "packages/proto/src/index.ts") }));
    if (sourceRoot === root) return;
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const wanted = join(args.resolveDir, args.path);
      const inside = relative(root, wanted);
      if (!SOURCES.some((s) => inside.startsWith(`${s}/`) || inside === s) || wanted.startsWith(cache)) return undefined;
      const base = join(sourceRoot, inside);
      for (const candidate of [base, `${base}.ts`, join(base, "index.ts")]) {
        if (existsSync(candidate) && statSync(candidate).isFile()) return { path: candidate };
      }
      return { errors: [{ text: `${inside} does not exist at ${revArg}` }] };
    });
  },
};

const result = await build({
  entryPoints: [fileURLToPath(new URL("./main.ts", import.meta.url))],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile,
  sourcemap: "linked",
  packages: "external",
  plugins: [sources],
  logLevel: "warning",
  metafile: true,
});

// What is measured: the commit, any uncommitted change to the bundled
// sources, and a digest of exactly the sources bundled.
const inputs = Object.keys(result.metafile.inputs)
  .filter((f) => f.startsWith("packages/"))
  .sort();
const digest = createHash("sha256");
for (const f of inputs) {
  const name = sourceRoot === root ? f : relative(sourceRoot, join(root, f));
  digest.update(name).update("\0").update(readFileSync(join(root, f))).update("\0");
}
let revision;
if (sourceRoot === root) {
  const changed = [...git(["diff", "--name-only", "HEAD", "--", ...SOURCES]).split("\n"), ...git(["ls-files", "--others", "--exclude-standard", "--", ...SOURCES]).split("\n")]
    .filter((f) => f && inputs.includes(f));
  revision = { commit: git(["rev-parse", "--short=12", "HEAD"]) || "unknown", changed };
} else {
  revision = { commit: relative(cache, sourceRoot).slice("rev-".length), changed: [] };
}
revision.sourcesSha256 = digest.digest("hex").slice(0, 16);

const child = spawn(process.execPath, [...process.execArgv, "--enable-source-maps", outfile, ...argv.filter((a) => a !== revArg)], {
  stdio: "inherit",
  env: { ...process.env, BENCH_ENGINE_REVISION: JSON.stringify(revision) },
});
const forward = (signal) => () => child.kill(signal);
process.on("SIGINT", forward("SIGINT"));
process.on("SIGTERM", forward("SIGTERM"));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
