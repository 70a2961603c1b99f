// Recovery without a person: after `kill -9` of the server, the same start
// command brings it back — whether its watchdog stopped the embedded
// PostgreSQL or (watchdog killed too) the cluster was left running — and a
// server never takes the data directory of a server that still runs.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, expect, test } from "vitest";
import { isAlive } from "./store/processes";
import { postmastersUnder, processes, runServer, spawnServer, tempDataDir, type ServerProcess } from "./testing/bin-process";

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
  const server = await spawnServer(["serve", "--data-dir", dir, "--port", "0", "--grpc-port", "0"]);
  servers.push(server);
  await server.ready();
  const owner = JSON.parse(readFileSync(join(dir, "controlplane", "owner.json"), "utf8")) as { pid: number; watchdogPid: number };
  expect(owner.pid).toBe(server.child.pid);
  watchdogs.push(owner.watchdogPid);
  return server;
}

test("a server killed during its first start (initdb) starts on the next attempt", async () => {
  const fresh = tempDataDir();
  try {
    const killed = await spawnServer(["serve", "--data-dir", fresh, "--port", "0", "--grpc-port", "0"]);
    servers.push(killed);
    const initdb = join(fresh, "controlplane", `data.initdb-${killed.child.pid}`);
    await waitFor(() => existsSync(join(initdb, "PG_VERSION")), "initdb to be under way", 30_000);
    killed.kill("SIGKILL");
    await killed.exited;
    const next = await spawnServer(["serve", "--data-dir", fresh, "--port", "0", "--grpc-port", "0"]);
    servers.push(next);
    await next.ready();
    next.kill("SIGTERM");
    expect((await next.exited).code, next.output()).toBe(0);
  } finally {
    // The killed server's initdb runs on as an orphan until it is done.
    await waitFor(() => !processes().some((p) => p.args.some((a) => a.startsWith(`--pgdata=${fresh}/`))), "the orphaned initdb to end", 60_000).catch(() => undefined);
    rmSync(fresh, { recursive: true, force: true });
  }
}, 120_000);

test("after kill -9 the start command brings the server back, and a clean stop leaves no PostgreSQL", async () => {
  const first = await start();
  expect(postmastersUnder(dir)).toHaveLength(1);

  // A second server on the same data directory is refused, naming the first; the first keeps serving.
  const second = await runServer(["serve", "--data-dir", dir, "--port", "0", "--grpc-port", "0"]);
  expect(second.code, second.output).toBe(1);
  expect(second.stderr).toContain(`${join(dir, "controlplane", "data")} is in use by PostgreSQL`);
  expect(second.stderr).toContain(`still running (pid ${first.child.pid}`);
  expect((await fetch(`${first.rest}/health`)).status).toBe(200);

  // kill -9: the watchdog stops the cluster.
  first.kill("SIGKILL");
  await first.exited;
  await waitFor(() => postmastersUnder(dir).length === 0, "the watchdog to stop the PostgreSQL of the killed server", 30_000);
  const again = await start();

  // kill -9 of the server and its watchdog: the cluster is left running on its old port…
  process.kill(watchdogs.at(-1)!, "SIGKILL");
  again.kill("SIGKILL");
  await again.exited;
  const [left] = postmastersUnder(dir);
  expect(left).toBeDefined();

  // …and the next start stops it, starts its own and serves.
  const third = await start();
  expect(third.output()).toContain(`stopping the PostgreSQL (pid ${left}) left running on ${join(dir, "controlplane", "data")} by a server that is gone (pid ${again.child.pid})`);
  expect(isAlive(left!)).toBe(false);
  const health = await fetch(`${third.rest}/health`);
  expect(health.status).toBe(200);
  expect(((await health.json()) as { checks: { database: string } }).checks.database).toBe("Healthy");

  // A clean stop: exit 0, no PostgreSQL left, the watchdog gone.
  third.kill("SIGTERM");
  expect((await third.exited).code, third.output()).toBe(0);
  expect(postmastersUnder(dir)).toEqual([]);
  await waitFor(() => !isAlive(watchdogs.at(-1)!), "the watchdog of a stopped server to exit", 10_000);
}, 180_000);
