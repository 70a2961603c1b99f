// The change stream's harder cases against two real clusters: TOAST, schema
// changes, tampered batches, row filters (and attempts to escape them),
// pause and resume, and each transform on snapshot and stream alike.
import { randomUUID } from "node:crypto";
import {
  AggregateFunction,
  AnonymizePIITransform_AnonymizationMethod as Method,
  QoSTier,
} from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RowFilterError } from "./index";
import { startBench, type Bench } from "./testing/replication";
import { tableChecksum, waitFor } from "./testing/tenant";
import { decompressValue } from "./transform/compress-columns";
import { PgTokenVault } from "./transform/token-vault";
import { parseLsn } from "./types";

let bench: Bench;
const replicate: Bench["replicate"] = (config, options) => bench.replicate(config, options);

beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

describe("the change stream", () => {
  test("an update that leaves a TOASTed value unchanged never overwrites it with NULL", async () => {
    const r = await replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const big = "x".repeat(100_000) + randomUUID();
    await r.db.query("UPDATE users SET bio = $1 WHERE id = 1", [big]);
    await r.db.query("UPDATE users SET name = 'renamed' WHERE id = 1");
    await r.caughtUp();
    const { rows } = await r.replica.query("SELECT name, bio FROM users WHERE id = 1");
    expect(rows[0]).toEqual({ name: "renamed", bio: big });
  }, 60_000);

  test("a column added on the source is added on the target and replicated", async () => {
    const r = await replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("ALTER TABLE users ADD COLUMN nickname varchar(40)");
    await r.db.query("INSERT INTO users (name, email, nickname) VALUES ('n', 'n@example.com', 'nick')");
    await r.caughtUp();
    const { rows } = await r.replica.query("SELECT nickname FROM users WHERE email = 'n@example.com'");
    expect(rows).toEqual([{ nickname: "nick" }]);
    const type = await r.replica.query("SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'nickname'");
    expect(type.rows[0].t).toBe("character varying(40)");
    expect(r.events.some((e) => e.type === "SchemaChanged")).toBe(true);
  }, 60_000);

  test("an incompatible schema change puts the replication in Error with an event that says what changed", async () => {
    const r = await replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("ALTER TABLE orders ALTER COLUMN status TYPE integer USING 0");
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 1)");
    await waitFor(() => r.pipeline.status === "Error", "the Error status");
    const error = r.events.find((e) => e.type === "ReplicationError");
    expect(error?.message).toBe("column orders.status changed type from text to integer");
  }, 60_000);

  test("a tampered batch is detected and stops the replication with an Error event; nothing of it is applied", async () => {
    let tamper = false;
    const r = await replicate(
      { encryption: { enabled: true, algorithm: "AES256GCM" } },
      {
        deps: {
          transport: async (sealed) => {
            if (!tamper) return sealed;
            const bytes = Uint8Array.from(sealed.bytes);
            bytes[bytes.length >> 1]! ^= 0x01;
            return { ...sealed, bytes };
          },
        },
      },
    );
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    tamper = true;
    await r.db.query("INSERT INTO users (name, email) VALUES ('tampered', 't@example.com')");
    await waitFor(() => r.pipeline.status === "Error", "the Error status");
    expect(r.events.find((e) => e.type === "ReplicationError")?.details.error).toBe("BatchIntegrityError");
    const { rowCount } = await r.replica.query("SELECT 1 FROM users WHERE name = 'tampered'");
    expect(rowCount).toBe(0);
  }, 60_000);

  test("pause keeps the slot; start resumes without loss", async () => {
    const r = await replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.pipeline.pause();
    expect(r.pipeline.status).toBe("Paused");
    await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'paused' FROM generate_series(1, 500) i");
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.caughtUp();
    const columns = ["id", "user_id", "amount", "status"];
    expect(await tableChecksum(r.replica, "orders", columns)).toEqual(await tableChecksum(r.db, "orders", columns));
    expect(r.pipeline.read().conflictsDetected).toBe(0);
  }, 60_000);

  test("stop keeps the target's data and drops slot and publication; cleanup drops the tables the replication created, not one that was there", async () => {
    const r = await replicate({ tableFilter: ["users.*", "orders.*"] });
    await r.replica.query("CREATE TABLE unrelated (id int PRIMARY KEY)");
    // The target had an orders table before the replication: it writes into it, and cleanup leaves it.
    await r.replica.query(`CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL, amount numeric(12,2) NOT NULL,
                                                status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const final = await r.pipeline.stop();
    expect(final.status).toBe("Stopped");
    expect(final.totalRows).toBeGreaterThanOrEqual(300);
    expect((await r.db.query("SELECT 1 FROM pg_publication UNION ALL SELECT 1 FROM pg_replication_slots WHERE database = current_database()")).rowCount).toBe(0);
    expect((await r.replica.query("SELECT count(*)::int AS n FROM users")).rows[0].n).toBe(100);
    const orders = (await r.replica.query("SELECT count(*)::int AS n FROM orders")).rows[0].n;
    expect(orders).toBeGreaterThan(0);
    await r.pipeline.cleanup();
    const tables = await r.replica.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    expect(tables.rows.map((t) => t.tablename)).toEqual(["orders", "unrelated"]);
    expect((await r.replica.query("SELECT count(*)::int AS n FROM orders")).rows[0].n).toBe(orders);
    expect((await r.replica.query("SELECT 1 FROM heliosdb_replication.created_objects")).rowCount).toBe(0);
    expect((await r.replica.query("SELECT 1 FROM heliosdb_replication.checkpoints")).rowCount).toBe(0);
  }, 60_000);

  test("a transaction larger than a batch is applied in pieces of one target transaction", async () => {
    const r = await replicate({ qosTier: QoSTier.STANDARD });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const before = r.pipeline.read().totalTransactions;
    // Small transactions share a batch with the start of the large one.
    for (let i = 0; i < 3; i++) await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'small')");
    await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT i % 100, i, 'bulk' FROM generate_series(1, 60000) i");
    await r.caughtUp();
    // Every received transaction is accounted applied: the lag figure returns to 0.
    await waitFor(() => r.pipeline.read().lagSeconds === 0, "the lag figure to return to 0");
    expect((await r.replica.query("SELECT count(*)::int AS n FROM orders WHERE status = 'bulk'")).rows[0].n).toBe(60000);
    const figures = r.pipeline.read();
    expect(figures.totalRows).toBeGreaterThanOrEqual(60000);
    expect(figures.totalTransactions - before).toBeGreaterThanOrEqual(1);
  }, 90_000);

  test("heartbeats keep an idle slot advancing while the database writes elsewhere", async () => {
    const r = await replicate({ tableFilter: ["users.*"] });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'not replicated' FROM generate_series(1, 5000) i");
    const { rows } = await r.db.query("SELECT pg_current_wal_lsn()::text AS lsn");
    await waitFor(async () => {
      const slot = await r.db.query("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [r.pipeline.slotName]);
      return parseLsn(slot.rows[0].lsn) >= parseLsn(rows[0].lsn);
    }, "the slot to move past WAL of unreplicated tables");
    await waitFor(() => r.pipeline.read().lagSeconds === 0, "lag 0 once caught up");
  }, 60_000);

  test("lag above max_lag_seconds raises REPLICATION_LAG_EXCEEDED and Degraded health", async () => {
    const r = await replicate(
      { maxLagSeconds: 1, encryption: { enabled: true, algorithm: "AES256GCM" } },
      { deps: { transport: (sealed) => new Promise((resolve) => setTimeout(() => resolve(sealed), 4000)) } },
    );
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'slow')");
    await waitFor(() => r.events.some((e) => e.type === "REPLICATION_LAG_EXCEEDED"), "the lag event");
    const event = r.events.find((e) => e.type === "REPLICATION_LAG_EXCEEDED")!;
    expect(Number(event.details.current_lag_seconds)).toBeGreaterThan(1);
    expect(event.details.max_lag_seconds).toBe("1");
    expect(r.pipeline.read().health).toBe("Degraded");
  }, 60_000);

  test("large tables are split into page ranges that several workers copy under one snapshot", async () => {
    const r = await replicate({}, { users: 20_000, deps: { snapshotRangePages: 16 } });
    await r.pipeline.start({ initialSyncParallelism: 3 });
    await r.pipeline.whenStreaming();
    await r.caughtUp();
    const columns = ["id", "name", "email", "phone", "ssn", "region", "bio", "created_at"];
    expect(await tableChecksum(r.replica, "users", columns)).toEqual(await tableChecksum(r.db, "users", columns));
    const pages = await r.db.query("SELECT pg_relation_size('users') / current_setting('block_size')::int AS pages");
    expect(Number(pages.rows[0].pages)).toBeGreaterThan(16 * 3);
  }, 60_000);

  test("TRUNCATE on the source empties the target table", async () => {
    const r = await replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'before')");
    await r.db.query("TRUNCATE orders");
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 2, 'after')");
    await r.caughtUp();
    const { rows } = await r.replica.query("SELECT status FROM orders");
    expect(rows).toEqual([{ status: "after" }]);
  }, 60_000);

  test("start from an explicit LSN skips the initial sync and streams from there", async () => {
    const r = await replicate({ tableFilter: ["orders.*"] });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.pipeline.pause();
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'skipped')");
    const { rows } = await r.db.query("SELECT pg_current_wal_lsn()::text AS lsn");
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 2, 'streamed')");
    await r.pipeline.start({ fromCheckpoint: rows[0].lsn });
    await r.pipeline.whenStreaming();
    await r.caughtUp();
    const statuses = await r.replica.query("SELECT status FROM orders WHERE status IN ('skipped', 'streamed')");
    expect(statuses.rows).toEqual([{ status: "streamed" }]);
  }, 60_000);

  test("a paused replication warns when its slot retains more WAL than the threshold", async () => {
    const r = await replicate({}, { deps: { walRetentionWarningBytes: 1_000_000 } });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.pipeline.pause();
    await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'filler' FROM generate_series(1, 50000) i");
    await waitFor(() => r.events.some((e) => e.type === "WalRetentionHigh"), "the WAL retention warning");
    expect(Number(r.events.find((e) => e.type === "WalRetentionHigh")!.details.retained_bytes)).toBeGreaterThan(1_000_000);
  }, 60_000);

  test("an insert whose key the target already holds is a conflict; the source wins, and the rest of the batch lands", async () => {
    const r = await replicate({ tableFilter: ["orders.*"] });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.replica.query("INSERT INTO orders (id, user_id, amount, status, created_at) VALUES (900001, 0, 0, 'target only', now())");
    await r.db.query("INSERT INTO orders (id, user_id, amount, status) VALUES (900001, 1, 1, 'from source'), (900002, 2, 2, 'another')");
    await r.caughtUp();
    const { rows } = await r.replica.query("SELECT id::int, status FROM orders WHERE id >= 900001 ORDER BY id");
    expect(rows).toEqual([{ id: 900001, status: "from source" }, { id: 900002, status: "another" }]);
    expect([r.pipeline.read().conflictsDetected, r.pipeline.read().conflictsResolved]).toEqual([1, 1]);
    expect(r.events.find((e) => e.type === "ConflictResolved")?.message).toBe("insert found existing in orders");
  }, 60_000);

  test("a row written on the target behind the stream's back is a conflict; the source wins", async () => {
    const r = await replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.replica.query("DELETE FROM orders WHERE id = 5");
    await r.db.query("UPDATE orders SET status = 'shipped' WHERE id = 5");
    await r.caughtUp();
    const { rows } = await r.replica.query("SELECT status FROM orders WHERE id = 5");
    expect(rows).toEqual([{ status: "shipped" }]);
    const figures = r.pipeline.read();
    expect([figures.conflictsDetected, figures.conflictsResolved]).toEqual([1, 1]);
    expect(r.events.find((e) => e.type === "ConflictResolved")?.details).toMatchObject({ table: "orders", key: '{"id":"5"}' });
  }, 60_000);
});

describe("filters", () => {
  test("table_filter globs select tables and columns; keys are always kept", async () => {
    const r = await replicate({ tableFilter: ["users.email", "orders.*"] });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("UPDATE users SET email = 'new@example.com', name = 'not replicated' WHERE id = 2");
    await r.caughtUp();
    const columns = await r.replica.query("SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 ORDER BY attnum");
    expect(columns.rows.map((c) => c.attname)).toEqual(["id", "email"]);
    const tables = await r.replica.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    expect(tables.rows.map((t) => t.tablename)).toEqual(["orders", "users"]);
    expect((await r.replica.query("SELECT email FROM users WHERE id = 2")).rows).toEqual([{ email: "new@example.com" }]);
  }, 60_000);

  test("row_filter holds on snapshot and stream, and a row that stops matching leaves the target", async () => {
    const r = await replicate(
      { tableFilter: ["users.*"], rowFilter: { enabled: true, expression: "region = 'eu'" } },
      { prepare: (db) => db.query("ALTER TABLE users REPLICA IDENTITY FULL").then(() => undefined) },
    );
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO users (name, email, region) VALUES ('eu', 'eu@example.com', 'eu'), ('us', 'us@example.com', 'us')");
    await r.db.query("UPDATE users SET region = 'us' WHERE id = 3");
    await r.caughtUp();
    const columns = ["id", "name", "email", "region"];
    expect(await tableChecksum(r.replica, "users", columns)).toEqual(
      await tableChecksum(r.db, "(SELECT * FROM users WHERE region = 'eu') AS eu", columns),
    );
  }, 60_000);

  test("a row filter on a column outside the replica identity is refused: the source would refuse UPDATE and DELETE", async () => {
    const r = await replicate({ tableFilter: ["users.*"], rowFilter: { enabled: true, expression: "region = 'eu'" } });
    const error = await r.pipeline.start().catch((e) => e);
    expect(error).toBeInstanceOf(RowFilterError);
    expect(error.message).toMatch(/not part of the replica identity/);
    await r.db.query("UPDATE users SET name = 'still writable' WHERE id = 1");
  }, 60_000);

  test.each([
    ["true) , TABLE public.secrets WHERE (true", /parenthesis it did not open/],
    ["true; DROP TABLE users", /may not contain ';'/],
    ["true -- comment", /comments/],
    ["$$x$$ = 'x'", /dollar/],
    ["id IN (SELECT id FROM secrets)", /refused the publication/],
    ["pg_sleep(1) IS NULL", /refused the publication/],
  ])("a row-filter injection attempt is refused: %s", async (expression, message) => {
    const r = await replicate({ tableFilter: ["users.*"], rowFilter: { enabled: true, expression } }, {
      prepare: (db) => db.query("CREATE TABLE secrets (id int PRIMARY KEY, secret text)").then(() => undefined),
    });
    const error = await r.pipeline.start().catch((e) => e);
    expect(error).toBeInstanceOf(RowFilterError);
    expect(error.message).toMatch(message);
    expect((await r.db.query("SELECT 1 FROM pg_publication")).rowCount).toBe(0);
    expect((await r.db.query("SELECT 1 FROM users")).rowCount).toBe(100);
  }, 60_000);
});

describe("transforms on snapshot and stream", () => {
  test("Tokenize, Redact, Generalize, CompressColumns and Filter", async () => {
    const vaultDb = `vault_${randomUUID().slice(0, 8)}`;
    await bench.source.createDatabase(vaultDb);
    const vault = new PgTokenVault(bench.source.url(vaultDb), bench.keys);
    const r = await replicate(
      {
        tableFilter: ["users.*", "orders.*"],
        transforms: [
          { transformType: { case: "anonymizePii", value: { columns: ["users.email"], method: Method.TOKENIZE } } },
          { transformType: { case: "anonymizePii", value: { columns: ["phone"], method: Method.REDACT } } },
          { transformType: { case: "anonymizePii", value: { columns: ["users.created_at"], method: Method.GENERALIZE } } },
          { transformType: { case: "compressColumns", value: { columns: ["users.bio"] } } },
          { transformType: { case: "filter", value: { table: "orders", expression: "status = 'cancelled'" } } },
        ],
      },
      { deps: { vault }, prepare: (db) => db.query("ALTER TABLE orders REPLICA IDENTITY FULL").then(() => undefined) },
    );
    await r.db.query("UPDATE orders SET status = 'cancelled' WHERE id <= 10");
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO users (name, email, phone, bio, created_at) VALUES ('s', 'stream@example.com', '555', 'bio text', '2024-05-17 10:00:00+00')");
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'cancelled'), (1, 2, 'new')");
    await r.db.query("UPDATE orders SET status = 'cancelled' WHERE id = 11");
    await r.caughtUp();

    const { rows } = await r.replica.query("SELECT email, phone, created_at::text AS created_at, bio FROM users WHERE name = 's'");
    const row = rows[0];
    expect(row.email).toMatch(/^tok_[a-z2-7]{32}$/);
    expect(await vault.detokenize("tenant-123", row.email, { permissions: ["pii:detokenize"] })).toBe("stream@example.com");
    expect(row.phone).toBe("REDACTED");
    expect(row.created_at).toBe("2024-05-01 00:00:00+00");
    expect(decompressValue(row.bio)).toBe("bio text");
    await vault.close();
    const snapshotRow = await r.replica.query("SELECT email, phone FROM users WHERE id = 1");
    expect(snapshotRow.rows[0].email).toMatch(/^tok_/);
    expect(snapshotRow.rows[0].phone).toBe("REDACTED");
    const cancelled = await r.replica.query("SELECT count(*)::int AS n FROM orders WHERE status = 'cancelled'");
    expect(cancelled.rows[0].n).toBe(0);
    const kept = await r.replica.query("SELECT count(*)::int AS n FROM orders");
    const expected = await r.db.query("SELECT count(*)::int AS n FROM orders WHERE status IS DISTINCT FROM 'cancelled'");
    expect(kept.rows[0].n).toBe(expected.rows[0].n);
  }, 90_000);

  test("Aggregate keeps a roll-up current from the snapshot, inserts, updates and deletes", async () => {
    const r = await replicate({
      tableFilter: ["orders.*"],
      transforms: [
        {
          transformType: {
            case: "aggregate",
            value: {
              table: "orders",
              targetTable: "orders_by_status",
              groupBy: ["status"],
              aggregations: [
                { function: AggregateFunction.COUNT },
                { function: AggregateFunction.SUM, column: "amount" },
                { function: AggregateFunction.MIN, column: "amount", alias: "smallest" },
                { function: AggregateFunction.MAX, column: "amount" },
              ],
            },
          },
        },
      ],
    });
    await r.db.query("UPDATE orders SET status = 'paid' WHERE id % 3 = 0");
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 999.99, 'refunded'), (2, 5, 'new')");
    await r.db.query("UPDATE orders SET status = 'refunded' WHERE id IN (1, 2, 3)");
    await r.db.query("DELETE FROM orders WHERE status = 'paid' AND id < 30");
    await r.caughtUp();
    const query = (table: string, columns: string) =>
      `SELECT status, ${columns} FROM ${table} ORDER BY status`;
    const replica = await r.replica.query(query("orders_by_status", "count::int, sum_amount::text, smallest::text, max_amount::text"));
    const expected = await r.db.query(
      query("(SELECT status, count(*)::int AS count, sum(amount)::text AS s, min(amount)::text AS mi, max(amount)::text AS ma FROM orders GROUP BY status) g", "count, s AS sum_amount, mi AS smallest, ma AS max_amount"),
    );
    expect(replica.rows).toEqual(expected.rows);
    expect(replica.rows.length).toBe(3);
    // Cleanup drops the roll-up, its functions and the table it created.
    await r.pipeline.stop();
    await r.pipeline.cleanup();
    const left = await r.replica.query(`SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
                                        UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace`);
    expect(left.rows).toEqual([]);
  }, 60_000);

  test("Aggregate problems are refused before anything is created", async () => {
    const r = await replicate({
      tableFilter: ["orders.*"],
      transforms: [
        { transformType: { case: "aggregate", value: { table: "users", groupBy: ["region"], aggregations: [{ function: AggregateFunction.COUNT }] } } },
        { transformType: { case: "aggregate", value: { table: "orders", groupBy: ["nope"], aggregations: [{ function: AggregateFunction.SUM, column: "status" }] } } },
      ],
    });
    const error = await r.pipeline.start().catch((e) => e);
    expect(error.problems.map((p: { message: string }) => p.message)).toEqual([
      'transforms[0].config.table: "users" is not a replicated table (the roll-up is computed from its replica)',
      'transforms[1].config.group_by[0]: "orders" has no replicated column "nope"',
      'transforms[1].config.aggregations[0].column: cannot sum "status" of type text',
    ]);
  }, 60_000);
});
