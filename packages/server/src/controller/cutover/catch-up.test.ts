// The catch-up's rounds, on a real source (each round writes a real mark in
// its WAL) and an orchestrator whose drains take the durations a test gives:
// rounds go on while they get shorter, and stop at the first short one.
import { startCluster, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { Orchestrator } from "../../orchestrator/orchestrator";
import type { ReplicationRow } from "../../store/replications";
import { catchUp } from "./catch-up";

let cluster: Cluster;
let session: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  session = await cluster.connect("postgres");
}, 120_000);

afterAll(async () => {
  await session?.end();
  await cluster?.stop();
}, 60_000);

// How many rounds catchUp makes when its drains take `durations` (ms), in turn; each is given a mark further on.
async function rounds(durations: number[]): Promise<number> {
  const marks: bigint[] = [];
  const orchestrator = {
    drain: async (_row: ReplicationRow, lsn: bigint) => {
      marks.push(lsn);
      await new Promise((r) => setTimeout(r, durations[marks.length - 1] ?? 0));
      return lsn;
    },
  } as unknown as Orchestrator;
  const source = { connection: {}, schema: "public", session };
  await catchUp(orchestrator, {} as ReplicationRow, source, { timeoutMs: 10_000, signal: new AbortController().signal });
  for (let i = 1; i < marks.length; i++) expect(marks[i]!).toBeGreaterThan(marks[i - 1]!);
  return marks.length;
}

test("a backlog: rounds go on while they get shorter, until one is under 20 ms", async () => {
  expect(await rounds([400, 200, 100, 50, 0])).toBe(5);
});

test("a replication that applies only as fast as the tenant writes: no round shorter than the one before ends it", async () => {
  expect(await rounds([200, 80, 120, 0])).toBe(3);
});

test("caught up already: one round", async () => {
  expect(await rounds([0, 0])).toBe(1);
});
