// `serve --demo` (the README's start command) after kill -9 of the server
// and its watchdog: the three clusters left running on their old ports are
// stopped, started again on new ones, the spec's connection ids point at the
// new ports, the data is there, and a clean stop leaves no PostgreSQL. On
// the way: the log names the file with the connection strings, never the
// password, and the demo's grants let the spec's request work for tenant-123.
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, expect, test } from "vitest";
import { isAlive } from "../store/processes";
import { postmastersUnder, runServer, spawnServer, tempDataDir, type ServerProcess } from "../testing/bin-process";
import { DEMO_SOURCE_ID, DEMO_TARGET_ID } from "./demo";

const dir = tempDataDir();
const servers: ServerProcess[] = [];
const watchdogs: number[] = [];

afterAll(async () => {
  for (const s of servers) s.kill("SIGKILL");
  await Promise.all(servers.map((s) => s.exited));
  for (const pid of [...watchdogs, ...postmastersUnder(dir)]) if (isAlive(pid)) process.kill(pid, "SIGINT");
  await waitFor(() => postmastersUnder(dir).length === 0, "the test's PostgreSQL to stop", 30_000).finally(() => rmSync(dir, { recursive: true, force: true }));
});

async function start(): Promise<ServerProcess> {
  const server = await spawnServer(["serve", "--demo", "--data-dir", dir, "--port", "0", "--grpc-port", "0"]);
  servers.push(server);
  await server.ready(120_000);
  for (const cluster of ["controlplane", "demo/us-east-1", "demo/us-west-2"]) {
    watchdogs.push((JSON.parse(readFileSync(join(dir, cluster, "owner.json"), "utf8")) as { watchdogPid: number }).watchdogPid);
  }
  return server;
}

async function users(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>("SELECT count(*) AS n FROM users")).rows[0]!.n);
  } finally {
    await client.end();
  }
}

test("serve --demo comes back after kill -9 of the server and its watchdog, and a clean stop leaves no PostgreSQL", async () => {
  const first = await start();
  expect(new Set(watchdogs).size).toBe(1); // one watchdog per server
  expect(await users(JSON.parse(readFileSync(join(dir, "demo.json"), "utf8")).source)).toBe(5000);
  process.kill(watchdogs[0]!, "SIGKILL");
  first.kill("SIGKILL");
  await first.exited;
  const left = postmastersUnder(dir);
  expect(left).toHaveLength(3);

  const second = await start();
  for (const pid of left) expect(second.output()).toContain(`stopping the PostgreSQL (pid ${pid}) left running on`);
  const { source } = JSON.parse(readFileSync(join(dir, "demo.json"), "utf8")) as { source: string };
  expect(await users(source)).toBe(5000);
  // The spec's source connection id points at the port the cluster has now.
  const token = (await runServer(["token", "--roles", "Admin", "--data-dir", dir])).stdout.trim();
  const res = await fetch(`${second.rest}/connections/${DEMO_SOURCE_ID}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  expect(JSON.stringify(await res.json())).toContain(`"port":${new URL(source).port}`);

  // The log says where the connection strings are, never the password; the file is the server user's only.
  const password = readFileSync(join(dir, "demo.password"), "utf8").trim();
  expect(second.output()).not.toContain(password);
  expect(second.output()).toContain(`demo connection strings:  ${join(dir, "demo.json")}`);
  expect(statSync(join(dir, "demo.json")).mode & 0o777).toBe(0o600);
  // The grants follow the placement: the spec's request works for tenant-123; tenant-456 sees its source only.
  const as = async (tenant: string, method: string, path: string, body?: unknown) => {
    const jwt = (await runServer(["token", "--tenant", tenant, "--roles", "Admin", "--data-dir", dir])).stdout.trim();
    const answer = await fetch(`${second.rest}${path}`, { method, headers: { Authorization: `Bearer ${jwt}`, "Content-Type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: answer.status, body: await answer.json() };
  };
  const spec = { source: { connection_id: DEMO_SOURCE_ID }, target: { connection_id: DEMO_TARGET_ID }, config: { table_filter: ["products.*"] } };
  const created = await as("tenant-123", "POST", "/replications", { tenant_id: "tenant-123", ...spec });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await as("tenant-456", "GET", "/connections")).body.data.map((c: { connection_id: string }) => c.connection_id)).toEqual([DEMO_SOURCE_ID]);
  const refused = await as("tenant-456", "POST", "/replications", { tenant_id: "tenant-456", ...spec });
  expect(refused.body.error.details.violations.map((v: { field: string }) => v.field)).toEqual(["source.database", "target.connection_id"]);

  second.kill("SIGTERM");
  expect((await second.exited).code, second.output()).toBe(0);
  expect(postmastersUnder(dir)).toEqual([]);
}, 240_000);
