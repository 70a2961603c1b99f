// The examples of examples/typescript/, each run as a user runs it — a Node
// process with its settings in the environment, the SDK as Node resolves it
// — against a real server, and held to what they print: pagination sees
// every replication once; the event follower, stopped and started again on
// its cursor file, prints every event exactly once; the API-key and OAuth
// examples work with the credentials they make and end them; the failover
// prints each step as it progresses, in order, to the routing switch; the
// migration prints its phases' progress from the event stream. (The SDK is
// the built one: `npx turbo run build` first, as `npm test` does.)
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, expect, test } from "vitest";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { EventStore } from "../../server/src/store/events";
import { startWorld, type World } from "../../server/src/testing/world";

const EXAMPLES = fileURLToPath(new URL("../../../examples/typescript/", import.meta.url));
const CACHE = fileURLToPath(new URL("../../../node_modules/.cache/heliosdb-sdk/", import.meta.url));
let world: World;
let dir: string;
let apiKey: string;

beforeAll(async () => {
  world = await startWorld({ users: 100 });
  // Under the repository, so that the examples' imports resolve as in a project that installed the SDK.
  mkdirSync(CACHE, { recursive: true });
  dir = mkdtempSync(join(CACHE, "examples-"));
  const key = await world.rest("POST", "/api-keys", { name: "examples", roles: ["Operator"], tenant_id: "tenant-123", tier: "Standard" });
  expect(key.status).toBe(201);
  apiKey = key.body.secret;
}, 180_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await world?.close();
}, 120_000);

/** The example bundled for Node (the SDK's "node" entry, as `node` resolves it), started with `env`. */
async function start(name: string, env: Record<string, string>) {
  const outfile = join(dir, name.replace(/\.ts$/, ".mjs"));
  // Types stripped, imports left to Node: the built SDK from the repository's node_modules.
  await build({ entryPoints: [join(EXAMPLES, name)], outfile, bundle: true, packages: "external", platform: "node", format: "esm", logLevel: "silent" });
  const child = spawn("node", [outfile], { cwd: dir, env: { ...process.env, HELIOSDB_BASE_URL: world.app.urls.rest, ...env } });
  const run = { out: "", err: "", exited: new Promise<number | null>((resolve) => child.on("exit", resolve)), kill: () => child.kill() };
  child.stdout.on("data", (b: Buffer) => (run.out += b));
  child.stderr.on("data", (b: Buffer) => (run.err += b));
  return run;
}

async function runToEnd(name: string, env: Record<string, string>): Promise<string> {
  const run = await start(name, env);
  const code = await run.exited;
  expect(code, `${name}:\n${run.out}\n${run.err}`).toBe(0);
  return run.out;
}

test("pagination.ts: the first page, every replication across pages once, and page by page", async () => {
  for (const db of ["examples_1", "examples_2", "examples_3"]) await world.createReplication(db, ["users"]);
  const total = (await world.rest("GET", "/replications?tenant_id=tenant-123&page_size=100")).body.pagination.total_items as number;
  expect(total).toBeGreaterThanOrEqual(3);
  const out = await runToEnd("pagination.ts", { HELIOSDB_API_KEY: apiKey });
  expect(out).toContain(`First page: 2 of ${total} replications, ${Math.ceil(total / 2)} pages`);
  const listed = [...out.matchAll(/^([0-9a-f-]{36}) \w+$/gm)].map((m) => m[1]);
  expect(listed).toHaveLength(total);
  expect(new Set(listed).size).toBe(total);
  expect(out).toContain(`Listed ${total} replications`);
  expect(out.match(/^Page \d+ of \d+: /gm)).toHaveLength(Math.ceil(total / 2));
}, 120_000);

test("stream-events.ts: stopped and started again on its cursor file, it prints every event exactly once", async () => {
  const id = await world.createReplication("examples_events", ["users"]);
  const events = new EventStore(world.pool);
  const append = async (from: number, n: number) => {
    for (let i = from; i < from + n; i++) await events.append([{ replicationId: id, tenantId: "tenant-123", type: "ConfigChanged", severity: "Info", message: `example ${i}`, details: {} }]);
  };
  const env = { HELIOSDB_API_KEY: apiKey, HELIOSDB_CURSOR_FILE: join(dir, "events.cursor") };
  const printed = (out: string) => [...out.matchAll(/ConfigChanged: (example \d+)$/gm)].map((m) => m[1]);

  // It follows from the cursor in its file: the log's head now, as if it had handled everything before.
  writeFileSync(env.HELIOSDB_CURSOR_FILE, String((await events.head()).head));
  const first = await start("stream-events.ts", env);
  await append(0, 5);
  await waitFor(() => printed(first.out).length === 5, "five events", 30_000);
  first.kill();
  await first.exited;
  await append(5, 5); // while it is not running

  const second = await start("stream-events.ts", env);
  await waitFor(() => printed(second.out).length === 5, "the five it missed", 30_000);
  await append(10, 2);
  await waitFor(() => printed(second.out).length === 7, "and the next ones", 30_000);
  second.kill();
  expect([...printed(first.out), ...printed(second.out)]).toEqual(Array.from({ length: 12 }, (_, i) => `example ${i}`));
}, 120_000);

test("api-keys.ts: a key created and used, rotated with an overlap (both secrets work), the old one revoked and refused", async () => {
  const out = await runToEnd("api-keys.ts", { HELIOSDB_TOKEN: world.token });
  const keyId = /^Created key (\S+);/m.exec(out)?.[1];
  expect(out).toMatch(/^With the key: \d+ replications$/m);
  const overlapEnds = /the old secret works until (\S+)$/m.exec(out)?.[1];
  expect(Date.parse(overlapEnds!) - Date.now()).toBeGreaterThan(3000_000);
  expect(out).toContain("Both secrets work during the overlap");
  expect(out).toContain(`Revoked key ${keyId}; its secret: UNAUTHORIZED`);
  expect(out).toContain("The new key still works");
  expect((await world.rest("GET", `/api-keys/${keyId}`)).body.revoked_at).toBeTruthy();
}, 60_000);

test("oauth.ts: a confidential client registered, its tokens asked for by the SDK, then deleted", async () => {
  const out = await runToEnd("oauth.ts", { HELIOSDB_TOKEN: world.token });
  const clientId = /^Registered OAuth client (\S+)$/m.exec(out)?.[1];
  expect(out).toMatch(/^With client credentials: \d+ replications$/m);
  expect(out).toContain("Deleted the OAuth client");
  expect((await world.rest("GET", `/oauth-clients/${clientId}`)).status).toBe(404);
}, 60_000);

// Last: the failover fences the world's source, which the examples above write through their replications' sources no more.
test("failover.ts: a failover of a streaming replication, each step printed as it progresses, in order, to the routing switch", async () => {
  const id = await world.createReplication("examples_failover", ["users", "orders"]);
  expect((await world.rest("POST", `/replications/${id}/start`, {})).status).toBe(200);
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", "streaming", 60_000);
  const out = await runToEnd("failover.ts", { HELIOSDB_API_KEY: apiKey, HELIOSDB_REPLICATION_ID: id });
  const failoverId = /^Failover (\S+) of replication (\S+): InProgress$/m.exec(out);
  expect(failoverId?.[2]).toBe(id);
  const steps = ["ValidateReplicaHealth", "StopReplication", "PromoteReplica", "UpdateRouting"];
  // Each step completed, in order (its start printed before, when the example saw it running).
  const completed = [...out.matchAll(/^ {2}(\w+): Completed \(\d+ ms\)/gm)].map((m) => m[1]);
  expect(completed).toEqual(steps);
  for (const m of out.matchAll(/^ {2}(\w+): InProgress$/gm)) expect(out.indexOf(`  ${m[1]}: Completed`)).toBeGreaterThan(m.index!);
  expect(out).toMatch(/^Failover completed: the primary is us-west-2 examples_failover; downtime \d+ ms$/m);
  const done = (await world.rest("GET", `/failovers/${failoverId![1]}`)).body;
  expect(done.status).toBe("Completed");
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body.primary).toMatchObject({ database: "examples_failover", region: "us-west-2" });
}, 120_000);

// After the failover (the tenant's primary is then us-west-2's examples_failover): migrated back to us-east-1 live.
test("migration.ts: a live migration, its phases' progress printed from the event stream as it runs, to the completion and its downtime", async () => {
  await world.east.createDatabase("examples_migrated");
  const out = await runToEnd("migration.ts", {
    HELIOSDB_API_KEY: apiKey,
    HELIOSDB_SOURCE_REGION: "us-west-2",
    HELIOSDB_TARGET_REGION: "us-east-1",
    HELIOSDB_TARGET_DATABASE: "examples_migrated",
  });
  const id = /^Migration (\S+) of tenant-123: us-west-2 → us-east-1 \(examples_migrated\): InProgress$/m.exec(out)?.[1];
  expect(id, out).toBeDefined();
  // Live, from the stream: the copy's progress and the phases as they end, in order.
  expect(out, out).toMatch(/^ {2}BulkCopy: [\d.]+% \([\d.]+ of [\d.]+ GB/m);
  const ends = [...out.matchAll(/^ {2}(\w+): Completed \(\d+ ms\)$/gm)].map((m) => m[1]);
  expect(ends, out).toEqual(["BulkCopy", "CDCCatchup", "Cutover"]);
  // Then the migration's own record.
  expect(out).toMatch(/^Phase BulkCopy: Completed, \d+ s, [\d.]+ GB copied$/m);
  expect(out).toMatch(/^Phase CDCCatchup: Completed, \d+ s, final lag [\d.]+ s$/m);
  expect(out).toMatch(/^Phase Cutover: Completed, \d+ ms$/m);
  expect(out).toMatch(/^Migration completed: downtime \d+ ms, [\d.]+ GB transferred$/m);
  const done = (await world.rest("GET", `/migrations/${id}`)).body;
  expect(done.status).toBe("Completed");
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body.primary).toMatchObject({ database: "examples_migrated", region: "us-east-1" });
}, 180_000);
