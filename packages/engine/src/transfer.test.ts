// Binary transfer (values in their types' binary format, COPY FORMAT binary)
// and text transfer must leave the same target: every kind of change, every
// awkward value, in both formats; and a type that cannot travel in binary
// switches the stream to text without losing a row.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startBench, type Bench } from "./testing/replication";
import { tableChecksum, waitFor } from "./testing/tenant";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const COLUMNS = ["id", "label", "amount", "at", "day", "flags", "doc", "raw", "ref", "tags", "big"];
const TABLE = `CREATE TABLE kinds (
  id bigint PRIMARY KEY, label text, amount numeric(14,4), at timestamptz, day date, flags boolean,
  doc jsonb, raw bytea, ref uuid, tags text[], big text)`;

// Every value kind the formats treat differently: escapes, NULLs, unicode,
// arrays, binary, TOAST (md5 digests do not compress, so 6 kB of them are
// stored out of line, and an update that leaves them alone omits them).
async function writeEverything(db: { query(sql: string, params?: unknown[]): Promise<unknown> }, base: number): Promise<void> {
  await db.query(
    `INSERT INTO kinds SELECT $1::bigint + g, 'row ' || g || E'\\t tab \\n newline \\\\ backslash ☃', g * 1.0001, now() - g * interval '1 minute',
            date '2024-02-29' + g, g % 2 = 0, jsonb_build_object('g', g, 'q', E'quote " and \\\\'), decode(md5(g::text), 'hex'),
            md5(g::text)::uuid, ARRAY['a', NULL, E'b\\tc'], CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(g::text || i), '') FROM generate_series(1, 200) i) END
       FROM generate_series(1, 200) g`,
    [base],
  );
  await db.query("UPDATE kinds SET label = NULL, amount = -amount WHERE id % 7 = 0 AND id > $1", [base]);
  // Leaves the TOASTed `big` unchanged: the stream omits it.
  await db.query("UPDATE kinds SET flags = NOT flags WHERE id % 10 = 0 AND id > $1", [base]);
  await db.query("UPDATE kinds SET id = id + 100000 WHERE id % 11 = 0 AND id > $1", [base]);
  await db.query("DELETE FROM kinds WHERE id % 13 = 0 AND id > $1", [base]);
}

describe("binary and text transfer", () => {
  for (const binaryTransfer of [true, false]) {
    const format = binaryTransfer ? "binary" : "text";
    test(`${format}: snapshot and every kind of change leave the target equal to the source`, async () => {
      const r = await bench.replicate(
        { tableFilter: ["kinds.*"] },
        { deps: { binaryTransfer }, prepare: async (db) => void (await db.query(TABLE)) },
      );
      await writeEverything(r.db, 0);
      await r.pipeline.start();
      await r.pipeline.whenStreaming();
      expect(r.pipeline.transferFormat).toBe(format);
      await writeEverything(r.db, 1000);
      await r.caughtUp();
      expect(await tableChecksum(r.replica, "kinds", COLUMNS)).toEqual(await tableChecksum(r.db, "kinds", COLUMNS));
      expect(r.pipeline.read().conflictsDetected).toBe(0);
    }, 60_000);
  }

  test("a type without binary I/O (aclitem) streams as text from the start", async () => {
    const r = await bench.replicate(
      { tableFilter: ["grants.*"] },
      { prepare: async (db) => void (await db.query("CREATE TABLE grants (id int PRIMARY KEY, a aclitem)")) },
    );
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    expect(r.pipeline.transferFormat).toBe("text");
    await r.db.query("INSERT INTO grants VALUES (1, 'postgres=r/postgres'), (2, NULL)");
    await r.caughtUp();
    expect((await r.replica.query("SELECT id, a::text FROM grants ORDER BY id")).rows).toEqual([
      { id: 1, a: "postgres=r/postgres" },
      { id: 2, a: null },
    ]);
  }, 60_000);

  test("a column of such a type added while streaming in binary switches the stream to text; no row is lost", async () => {
    const r = await bench.replicate(
      { tableFilter: ["kinds.*"] },
      { prepare: async (db) => void (await db.query(TABLE)) },
    );
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    expect(r.pipeline.transferFormat).toBe("binary");
    await writeEverything(r.db, 0);
    await r.db.query("ALTER TABLE kinds ADD COLUMN a aclitem");
    await r.db.query("BEGIN; INSERT INTO kinds (id, label, a) VALUES (5000, 'granted', 'postgres=r/postgres'); UPDATE kinds SET label = 'changed' WHERE id = 1; COMMIT");
    await writeEverything(r.db, 6000);
    await r.caughtUp();
    expect(r.pipeline.transferFormat).toBe("text");
    expect(r.events.some((e) => e.type === "SchemaChanged" && /text format/.test(e.message))).toBe(true);
    const columns = [...COLUMNS, "a"];
    expect(await tableChecksum(r.replica, "kinds", columns)).toEqual(await tableChecksum(r.db, "kinds", columns));
  }, 60_000);

  test("binary transfer: an update of a row missing on the target is a conflict named by its key as text", async () => {
    const r = await bench.replicate(
      { tableFilter: ["kinds.*"] },
      { prepare: async (db) => void (await db.query(TABLE)) },
    );
    await r.db.query("INSERT INTO kinds (id, label, big) VALUES (42, 'a', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i))");
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    expect(r.pipeline.transferFormat).toBe("binary");
    await r.replica.query("DELETE FROM kinds WHERE id = 42");
    // `big` is TOASTed and unchanged: only the sent columns can be written, and the row is missing.
    await r.db.query("UPDATE kinds SET label = 'b' WHERE id = 42");
    await r.caughtUp();
    await waitFor(() => r.events.some((e) => e.type === "ConflictDetected"), "the conflict event");
    expect(r.events.find((e) => e.type === "ConflictDetected")?.details).toMatchObject({ table: "kinds", key: '{"id":"42"}' });
  }, 60_000);
});
