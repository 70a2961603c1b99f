// lockWaits on a real PostgreSQL: a session left in a transaction holding a
// table, and a writer queued behind it, are named (the writer, and the
// session it waits for); nothing is said when nobody waits.
import { afterAll, beforeAll, expect, test } from "vitest";
import { startCluster, waitFor, type Cluster } from "../testing/index";
import { lockWaits } from "./index";

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createDatabase("waits");
}, 120_000);
afterAll(() => cluster?.stop(), 60_000);

test("names each session waiting for a lock and the one holding it; nothing when none waits", async () => {
  const [probe, holder, writer] = await Promise.all([cluster.connect("waits"), cluster.connect("waits"), cluster.connect("waits")]);
  try {
    await probe.query("CREATE TABLE t (id int PRIMARY KEY)");
    expect(await lockWaits(probe)).toEqual([]);
    await holder.query("SET application_name = 'left_open'; BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
    await writer.query("SET application_name = 'the_writer'");
    const insert = writer.query("INSERT INTO t VALUES (1)");
    let waits: string[] = [];
    await waitFor(async () => (waits = await lockWaits(probe)).length > 0, "the writer to wait", 10_000);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatch(/^pid \d+ \(the_writer, INSERT INTO t VALUES \(1\)\) waits for pid \d+ \(left_open, idle in transaction, .*LOCK TABLE t IN ACCESS EXCLUSIVE MODE\)$/);
    await holder.query("ROLLBACK");
    await insert;
    expect(await lockWaits(probe)).toEqual([]);
  } finally {
    await Promise.all([probe.end(), holder.end(), writer.end()]);
  }
}, 60_000);
