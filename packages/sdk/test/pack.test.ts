// What a user outside the monorepo runs: the packed SDK (and the contract
// package it depends on) installed with npm in an empty directory — its ESM,
// CJS and Node entries load — and spec §9.1's example, as written in
// examples/typescript/quickstart.ts, run against a real server: it prints
// the replication's id and then its live lag.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startWorld, type World } from "../../server/src/testing/world";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
let world: World;
let dir: string;

beforeAll(async () => {
  world = await startWorld({ users: 100 });
  dir = mkdtempSync(join(tmpdir(), "heliosdb-sdk-user-"));
}, 180_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await world?.close();
}, 120_000);

test("the packed SDK installs in an empty directory, and spec §9.1's example runs with it: the replication's id, then its lag", async () => {
  execFileSync("npm", ["pack", "--pack-destination", dir, "-w", "@heliosdb/replication-proto", "-w", "@heliosdb/replication-sdk"], { cwd: ROOT, stdio: "pipe" });
  const tarballs = readdirSync(dir).filter((f) => f.endsWith(".tgz"));
  expect(tarballs).toHaveLength(2);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "sdk-user", private: true, type: "module" }));
  execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", ...tarballs.map((t) => `./${t}`)], { cwd: dir, stdio: "pipe" });

  // CommonJS and the Node entry too.
  const loaded = execFileSync("node", ["-e", "const sdk = require('@heliosdb/replication-sdk'); const node = require('@heliosdb/replication-sdk/node'); console.log(typeof sdk.HeliosDBReplicationClient, typeof sdk.NotFoundError, typeof node.grpc)"], { cwd: dir, encoding: "utf8" });
  expect(loaded.trim()).toBe("function function function");

  // The example as a user runs it (tsx strips the types the same way).
  const source = readFileSync(join(ROOT, "examples/typescript/quickstart.ts"), "utf8");
  writeFileSync(join(dir, "quickstart.mjs"), (await transform(source, { loader: "ts", format: "esm" })).code);
  const key = await world.rest("POST", "/api-keys", { name: "quickstart", roles: ["Operator"], tenant_id: "tenant-123", tier: "Standard" });
  const child = spawn("node", ["quickstart.mjs"], { cwd: dir, env: { ...process.env, HELIOSDB_API_KEY: key.body.secret, HELIOSDB_BASE_URL: world.app.urls.rest } });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b));
  child.stderr.on("data", (b: Buffer) => (err += b));
  try {
    const deadline = Date.now() + 60_000;
    while ((out.match(/^Lag: [\d.]+s$/gm) ?? []).length < 2) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the example stopped or stalled:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    child.kill();
  }
  const id = /^Created replication: ([0-9a-f-]{36})$/m.exec(out)?.[1];
  expect(id).toBeDefined();
  expect((await world.rest("GET", `/replications/${id}`)).body.status).toMatch(/Syncing|Streaming|Initializing/);
}, 180_000);
