// `serve --demo` (the README's start command) after kill -9 of the server
// and its watchdog: the three clusters left running on their old ports are
// stopped, started again on new ones, the spec's connection ids point at the
// new ports, the data is there, and a clean stop leaves no PostgreSQL.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, expect, test } from "vitest";
import { isAlive } from "../store/processes";
import { postmastersUnder, runServer, spawnServer, tempDataDir, type ServerProcess } from "../testing/bin-process";
import { DEMO_SOURCE_ID } from "./demo";

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

  second.kill("SIGTERM");
  expect((await second.exited).code, second.output()).toBe(0);
  expect(postmastersUnder(dir)).toEqual([]);
}, 240_000);
