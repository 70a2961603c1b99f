// COPY sent with its data in one write, and statements held for the next
// query, on a real server: what succeeds is written and counted, and every
// way it can fail leaves the session ready for the next query, with the
// transaction as a failure in that place would have left it.
import pg from "pg";
import { afterAll, beforeAll, beforeEach, expect, test } from "vitest";
import { startCluster, type Cluster } from "../testing/clusters";
import { CopyData, copyIn } from "./copy-in";
import { Deferred } from "./deferred";

let cluster: Cluster;
let client: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createDatabase("copy_in");
  client = await cluster.connect("copy_in");
  await client.query("CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL)");
}, 120_000);

afterAll(async () => {
  await client?.end();
  await cluster?.stop();
}, 60_000);

beforeEach(async () => {
  await client.query("TRUNCATE t");
});

function lines(from: number, count: number, note = "x"): CopyData {
  const data = new CopyData();
  // In pieces, as CopyWriter hands them over.
  for (let i = from; i < from + count; i += 100) {
    const rows = [];
    for (let j = i; j < Math.min(i + 100, from + count); j++) rows.push(`${j}\t${note} ${j}\n`);
    data.write(Buffer.from(rows.join("")));
  }
  data.end();
  return data;
}

const count = async () => Number((await client.query("SELECT count(*) AS n FROM t")).rows[0].n);

test("the statements before the COPY and the data arrive together; the rows copied are counted", async () => {
  const deferred = new Deferred();
  deferred.add("BEGIN");
  deferred.add("SAVEPOINT s");
  expect(await copyIn(client, deferred.before("COPY t FROM STDIN"), lines(0, 1_000))).toBe(1_000);
  deferred.add("RELEASE SAVEPOINT s");
  const result = await deferred.query(client, "SELECT count(*)::int AS n FROM t");
  expect(result.rows).toEqual([{ n: 1_000 }]);
  await client.query("COMMIT");
  expect(await count()).toBe(1_000);
});

test("several megabytes in one COPY", async () => {
  const note = "y".repeat(2_000);
  expect(await copyIn(client, "COPY t FROM STDIN", lines(0, 3_000, note))).toBe(3_000);
  expect(Number((await client.query("SELECT sum(length(note)) AS n FROM t")).rows[0].n)).toBeGreaterThan(6_000_000);
});

test("a COPY that fails part way (a duplicate key) rejects with its SQLSTATE; the session rolls back to the savepoint and goes on", async () => {
  await client.query("BEGIN");
  await copyIn(client, "COPY t FROM STDIN", lines(0, 10));
  // The data after the failing row is still on its way when the server gives up: it must ignore it.
  await expect(copyIn(client, "SAVEPOINT s;\nCOPY t FROM STDIN", lines(5, 5_000))).rejects.toMatchObject({ code: "23505" });
  await client.query("ROLLBACK TO SAVEPOINT s");
  expect(await copyIn(client, "COPY t FROM STDIN", lines(10, 10))).toBe(10);
  await client.query("COMMIT");
  expect(await count()).toBe(20);
});

test("a string that fails before its COPY starts rejects, and its data is ignored, not taken for commands", async () => {
  await expect(copyIn(client, "SELECT 1/0;\nCOPY t FROM STDIN", lines(0, 100))).rejects.toMatchObject({ code: "22012" });
  await expect(copyIn(client, "COPY no_such_table FROM STDIN", lines(0, 100))).rejects.toMatchObject({ code: "42P01" });
  expect((await client.query("SELECT 'ready' AS s")).rows).toEqual([{ s: "ready" }]);
  expect(await count()).toBe(0);
});

test("a bad row rejects the COPY, and nothing of it is written", async () => {
  const data = new CopyData();
  data.write(Buffer.from("1\tfine\nnot a number\tbad\n"));
  data.end();
  await expect(copyIn(client, "COPY t FROM STDIN", data)).rejects.toMatchObject({ code: "22P02" });
  expect(await count()).toBe(0);
});

test("data not ended is refused before anything is sent", async () => {
  const data = new CopyData();
  data.write(Buffer.from("1\tx\n"));
  expect(() => copyIn(client, "COPY t FROM STDIN", data)).toThrow(/not complete/);
  expect(await count()).toBe(0);
});

test("held statements: in order, in front of the next query; a failing one fails there; take() and clear() empty the hold", async () => {
  const deferred = new Deferred();
  deferred.add("BEGIN");
  deferred.add("INSERT INTO t VALUES (1, 'held')");
  const result = await deferred.query(client, "SELECT count(*)::int AS n FROM t");
  expect(result.rows).toEqual([{ n: 1 }]);
  deferred.add("INSERT INTO t VALUES (1, 'duplicate')");
  await expect(deferred.query(client, "SELECT 1")).rejects.toMatchObject({ code: "23505" });
  await client.query("ROLLBACK");
  expect(await count()).toBe(0);
  deferred.add("SELECT 1");
  expect(deferred.take()).toBe("SELECT 1");
  expect(deferred.take()).toBe("");
  deferred.add("SELECT 1/0");
  deferred.clear();
  expect(deferred.before("SELECT 2")).toBe("SELECT 2");
});
