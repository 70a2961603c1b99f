import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startCluster, type Cluster } from "../testing/clusters";
import { UNCHANGED_TOAST, parseLsn, type Lsn, type RowChange } from "../types";
import type { PgOutputMessage } from "./pgoutput";
import { ReplicationConnection, ReplicationError, type MessageHandler, type StartOptions } from "./replication-connection";
import { rowValues } from "./wire-row";

// A short wal_sender_timeout makes the server ask for replies every ~2 s, so keepalives show up quickly.
let cluster: Cluster;
let db: pg.Client;
const open: ReplicationConnection[] = [];

beforeAll(async () => {
  cluster = await startCluster(["-c", "wal_sender_timeout=4s"]);
  await cluster.createDatabase("app");
  db = await cluster.connect("app");
}, 60_000);

afterAll(async () => {
  for (const c of open) await c.close();
  await db?.end();
  await cluster?.stop();
}, 60_000);

async function connect(): Promise<ReplicationConnection> {
  const c = await ReplicationConnection.connect(cluster.url("app"));
  open.push(c);
  return c;
}

/** A table with a primary key, a publication for it, and a slot created through the API under test. */
async function setup(name: string, columns = "id int PRIMARY KEY, name text, note text") {
  await db.query(`CREATE TABLE ${name} (${columns})`);
  await db.query(`CREATE PUBLICATION ${name}_pub FOR TABLE ${name}`);
  const conn = await connect();
  const slot = await conn.createSlot(`${name}_slot`);
  return { conn, slot, options: { slot: `${name}_slot`, publication: `${name}_pub`, startLsn: slot.consistentPoint } };
}

interface Received {
  message: PgOutputMessage;
}

/** Streams into an array; `done` never rejects unhandled, the outcome is kept for assertions. */
function collect(conn: ReplicationConnection, options: StartOptions, handler?: MessageHandler) {
  const received: Received[] = [];
  let outcome: { ok: true } | { ok: false; error: unknown } | undefined;
  const done = conn
    .start({ statusIntervalMs: 1000, ...options }, async (message) => {
      received.push({ message });
      await handler?.(message);
    })
    .then(
      () => void (outcome = { ok: true }),
      (error: unknown) => void (outcome = { ok: false, error }),
    );
  return {
    received,
    done,
    outcome: () => outcome,
    messages: () => received.map((r) => r.message),
    commits: () => received.flatMap((r) => (r.message.tag === "commit" ? [r.message] : [])),
    async waitFor(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (outcome) throw new Error(`stream ended while waiting for ${what}: ${String((outcome as { error?: unknown }).error)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

async function confirmedFlush(slot: string): Promise<Lsn> {
  const { rows } = await db.query("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [slot]);
  return parseLsn(String(rows[0]?.lsn));
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const changes = (messages: PgOutputMessage[]): RowChange[] =>
  messages.flatMap((m) => (m.tag === "change" ? [m.change] : []));
const strip = (c: RowChange) =>
  c.kind === "truncate"
    ? { kind: c.kind, tables: c.relations.map((r) => r.table), cascade: c.cascade, restartIdentity: c.restartIdentity }
    : {
        ...c,
        relation: c.relation.table,
        ...("newRow" in c ? { newRow: rowValues(c.newRow) } : {}),
        ...("oldRow" in c && c.oldRow ? { oldRow: rowValues(c.oldRow) } : {}),
      };

describe("ReplicationConnection against PostgreSQL", () => {
  test("identifySystem describes the cluster", async () => {
    const conn = await connect();
    const id = await conn.identifySystem();
    expect(id.systemId).toMatch(/^\d+$/);
    expect(id.timeline).toBe(1);
    expect(id.xlogPos).toBeGreaterThan(0n);
    expect(id.dbName).toBe("app");
    await conn.close();
  });

  test("inserts, updates, deletes and truncate decode in order between begin and commit", async () => {
    const { conn, slot, options } = await setup("dml");
    expect(slot.slotName).toBe("dml_slot");
    expect(slot.snapshotName).not.toBe("");
    const xids: number[] = [];
    const txn = async (...statements: string[]) => {
      await db.query("BEGIN");
      const { rows } = await db.query("SELECT (pg_current_xact_id()::text::bigint % 4294967296)::int8 AS xid");
      xids.push(Number(rows[0].xid));
      for (const s of statements) await db.query(s);
      await db.query("COMMIT");
    };
    await txn("INSERT INTO dml VALUES (1, 'a', NULL), (2, 'b', 'x')");
    await txn("UPDATE dml SET name = 'bb' WHERE id = 2", "UPDATE dml SET id = 3 WHERE id = 1", "DELETE FROM dml WHERE id = 2");
    await txn("TRUNCATE dml RESTART IDENTITY CASCADE");

    const s = collect(conn, options);
    await s.waitFor(() => s.commits().length >= 3, "three commits");
    const messages = s.messages();
    expect(messages.filter((m) => m.tag !== "relation").map((m) => (m.tag === "change" ? m.change.kind : m.tag))).toEqual([
      "begin", "insert", "insert", "commit",
      "begin", "update", "update", "delete", "commit",
      "begin", "truncate", "commit",
    ]);
    // A Relation message comes before the first row of its table.
    const firstRelation = messages.findIndex((m) => m.tag === "relation");
    expect(firstRelation).toBe(1);
    const relation = messages[firstRelation];
    expect(relation?.tag === "relation" && relation.relation).toMatchObject({
      schema: "public",
      table: "dml",
      replicaIdentity: "d",
      columns: [
        { name: "id", typeOid: 23, isKey: true },
        { name: "name", typeOid: 25, isKey: false },
        { name: "note", typeOid: 25, isKey: false },
      ],
    });
    expect(changes(messages).map(strip)).toEqual([
      { kind: "insert", relation: "dml", newRow: ["1", "a", null] },
      { kind: "insert", relation: "dml", newRow: ["2", "b", "x"] },
      { kind: "update", relation: "dml", newRow: ["2", "bb", "x"] },
      // The key changed, so the old key comes along (non-key columns null).
      { kind: "update", relation: "dml", oldRow: ["1", null, null], newRow: ["3", "a", null] },
      { kind: "delete", relation: "dml", oldRow: ["2", null, null] },
      { kind: "truncate", tables: ["dml"], cascade: true, restartIdentity: true },
    ]);

    const begins = messages.flatMap((m) => (m.tag === "begin" ? [m] : []));
    const commits = s.commits();
    expect(begins.map((b) => b.xid)).toEqual(xids);
    let previousEnd = 0n;
    for (const [i, begin] of begins.entries()) {
      const commit = commits[i]!;
      expect(commit.commitLsn).toBe(begin.finalLsn);
      expect(commit.endLsn).toBeGreaterThan(begin.finalLsn);
      expect(begin.finalLsn).toBeGreaterThan(previousEnd);
      expect(commit.commitTime).toEqual(begin.commitTime);
      expect(Math.abs(commit.commitTime.getTime() - Date.now())).toBeLessThan(60_000);
      previousEnd = commit.endLsn;
    }
    await conn.close();
    await s.done;
    expect(s.outcome()).toEqual({ ok: true });
  });

  test("NULL and an unchanged TOASTed value decode to null and UNCHANGED_TOAST", async () => {
    const { conn, options } = await setup("toasty", "id int PRIMARY KEY, big text, n int");
    // EXTERNAL: stored out of line uncompressed, so a repetitive 10 kB value really is TOASTed.
    await db.query("ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL");
    await db.query("INSERT INTO toasty VALUES (1, repeat('x', 10000), NULL)");
    await db.query("UPDATE toasty SET n = 5 WHERE id = 1");
    const s = collect(conn, options);
    await s.waitFor(() => s.commits().length >= 2, "two commits");
    expect(changes(s.messages()).map(strip)).toEqual([
      { kind: "insert", relation: "toasty", newRow: ["1", "x".repeat(10000), null] },
      { kind: "update", relation: "toasty", newRow: ["1", UNCHANGED_TOAST, "5"] },
    ]);
    await conn.close();
  });

  test("logical messages arrive, transactional inside their transaction", async () => {
    const { conn, options } = await setup("msgs");
    await db.query("BEGIN");
    await db.query("SELECT pg_logical_emit_message(true, 'heliosdb', 'x')");
    await db.query("COMMIT");
    await db.query("SELECT pg_logical_emit_message(false, 'heliosdb', 'now')");
    const s = collect(conn, { ...options, messages: true });
    await s.waitFor(() => s.messages().filter((m) => m.tag === "message").length >= 2, "two messages");
    const [begin, message, commit, loose] = s.messages();
    expect(begin?.tag).toBe("begin");
    expect(message).toMatchObject({ tag: "message", transactional: true, prefix: "heliosdb", content: Buffer.from("x") });
    expect(commit?.tag).toBe("commit");
    expect(loose).toMatchObject({ tag: "message", transactional: false, prefix: "heliosdb", content: Buffer.from("now") });
    if (message?.tag === "message" && begin?.tag === "begin") {
      expect(message.lsn).toBeGreaterThan(0n);
      expect(message.lsn).toBeLessThanOrEqual(begin.finalLsn);
    }
    await conn.close();
  });

  test("acknowledge moves confirmed_flush_lsn exactly there; keepalives never move it further", async () => {
    const { conn, options } = await setup("acks");
    await db.query("CREATE TABLE acks_unrelated (id serial PRIMARY KEY, v text)");
    // No unprompted status updates: the server has to ask (reply requested), and the reply must hold the ack.
    const s = collect(conn, { ...options, statusIntervalMs: 600_000 });
    await db.query("INSERT INTO acks VALUES (1, 'a', 'b')");
    await s.waitFor(() => s.commits().length >= 1, "a commit");
    const acked = s.commits()[0]!.endLsn;
    conn.acknowledge(acked);
    expect(conn.lastAcknowledged).toBe(acked);
    await eventually(async () => (await confirmedFlush("acks_slot")) === acked, "confirmed_flush_lsn to reach the ack");

    // WAL the publication does not cover: the server's position moves on, the slot must not.
    for (let i = 0; i < 5; i++) await db.query("INSERT INTO acks_unrelated (v) SELECT 'v' FROM generate_series(1, 500)");
    const keepalives = conn.keepalivesReceived;
    const replies = conn.repliesRequested;
    await s.waitFor(
      () => conn.keepalivesReceived >= keepalives + 3 && conn.repliesRequested >= replies + 2 && conn.serverWalEnd > acked,
      "keepalives past the ack, two of them asking for a reply",
      30_000,
    );
    expect(await confirmedFlush("acks_slot")).toBe(acked);
    const { rows } = await db.query(
      "SELECT write_lsn::text AS w, flush_lsn::text AS f FROM pg_stat_replication " +
        "WHERE pid = (SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'acks_slot')",
    );
    expect(rows).toHaveLength(1);
    for (const row of rows) {
      expect(parseLsn(String(row.w))).toBeLessThanOrEqual(acked);
      expect(parseLsn(String(row.f))).toBeLessThanOrEqual(acked);
    }
    expect(s.commits()).toHaveLength(1);
    await conn.close();
    expect(await confirmedFlush("acks_slot")).toBe(acked);
  }, 60_000);

  test("caught up, a keepalive's position is confirmed (a fast shutdown of the source needs it); with a transaction not yet acknowledged, it is not", async () => {
    const { conn, options } = await setup("idle");
    await db.query("CREATE TABLE idle_unrelated (id serial PRIMARY KEY, v text)");
    let caughtUp = false;
    const s = collect(conn, { ...options, statusIntervalMs: 600_000, caughtUp: () => caughtUp });
    await db.query("INSERT INTO idle VALUES (1, 'a', 'b')");
    await s.waitFor(() => s.commits().length >= 1, "a commit");
    // Delivered, not acknowledged: keepalives past it confirm nothing.
    for (let i = 0; i < 3; i++) await db.query("INSERT INTO idle_unrelated (v) SELECT 'v' FROM generate_series(1, 500)");
    const keepalives = conn.keepalivesReceived;
    await s.waitFor(() => conn.keepalivesReceived >= keepalives + 2, "keepalives", 30_000);
    expect(conn.lastAcknowledged).toBe(0n);
    // Applied and acknowledged, nothing pending: the next keepalive's position is confirmed, past the commit.
    const acked = s.commits()[0]!.endLsn;
    conn.acknowledge(acked);
    caughtUp = true;
    for (let i = 0; i < 3; i++) await db.query("INSERT INTO idle_unrelated (v) SELECT 'v' FROM generate_series(1, 500)");
    await eventually(async () => (await confirmedFlush("idle_slot")) > acked, "confirmed_flush_lsn past the ack");
    expect(conn.lastAcknowledged).toBeGreaterThan(acked);
    expect(conn.lastAcknowledged).toBeLessThanOrEqual(conn.serverWalEnd);
    expect(s.commits()).toHaveLength(1);
    await conn.close();
  }, 60_000);

  test("caught up, keepalives after other transactions' commits are confirmed at most once per ackIntervalMs, the last one trailing", async () => {
    // Every commit in the cluster wakes every walsender, and each pings its
    // client: with many tenants on one source, answering each ping would be
    // most of the node's work (and the source's).
    const { conn, options } = await setup("storm");
    await db.query("CREATE TABLE storm_unrelated (id serial PRIMARY KEY, v text)");
    const s = collect(conn, { ...options, statusIntervalMs: 600_000, ackIntervalMs: 500, caughtUp: () => true });
    await db.query("INSERT INTO storm VALUES (1, 'a', 'b')");
    await s.waitFor(() => s.commits().length >= 1, "a commit");
    conn.acknowledge(s.commits()[0]!.endLsn);

    const keepalives = conn.keepalivesReceived;
    const reports = conn.statusReports;
    const replies = conn.repliesRequested;
    const t0 = Date.now();
    for (let i = 0; i < 149; i++) await db.query("INSERT INTO storm_unrelated (v) VALUES ('v')");
    const beforeLast = parseLsn(String((await db.query("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0].lsn));
    await db.query("INSERT INTO storm_unrelated (v) VALUES ('v')");
    await s.waitFor(() => conn.keepalivesReceived >= keepalives + 30, "a keepalive after most commits", 30_000);
    // One report per interval begun (the first at once, the last trailing), and the replies the server asked for;
    // answering each ping would be one per keepalive (30 or more).
    const sent = conn.statusReports - reports;
    const allowed = Math.floor((Date.now() - t0) / 500) + 2 + (conn.repliesRequested - replies);
    expect(sent).toBeLessThanOrEqual(allowed);

    // The trailing report takes the slot to the last confirmed position.
    await eventually(async () => conn.lastAcknowledged > beforeLast && (await confirmedFlush("storm_slot")) === conn.lastAcknowledged, "the slot confirmed past the last commit");
    expect(s.commits()).toHaveLength(1);
    await conn.close();
  }, 60_000);

  test("a reconnect at the acknowledged LSN skips acknowledged transactions and delivers later ones", async () => {
    const { conn, options } = await setup("resume");
    const first = collect(conn, options);
    await db.query("INSERT INTO resume VALUES (1, 'a', NULL)");
    await db.query("INSERT INTO resume VALUES (2, 'b', NULL)");
    await first.waitFor(() => first.commits().length >= 2, "two commits");
    const acked = first.commits()[0]!.endLsn;
    conn.acknowledge(acked);
    await conn.close();
    await first.done;
    expect(first.outcome()).toEqual({ ok: true });
    expect(await confirmedFlush("resume_slot")).toBe(acked);

    const again = await connect();
    const second = collect(again, { ...options, startLsn: acked });
    await db.query("INSERT INTO resume VALUES (3, 'c', NULL)");
    await second.waitFor(() => second.commits().length >= 2, "two commits after reconnect");
    expect(changes(second.messages()).map((c) => c.kind === "insert" && rowValues(c.newRow)[0])).toEqual(["2", "3"]);
    // The replayed unacknowledged transaction is the very same one.
    expect(second.commits()[0]!.endLsn).toBe(first.commits()[1]!.endLsn);
    await again.close();
  });

  test("a slow consumer of a 200k-row transaction gets every row in order with a bounded queue", async () => {
    const { conn, options } = await setup("bulk", "id int PRIMARY KEY, v text");
    await db.query("INSERT INTO bulk SELECT g, 'value ' || g FROM generate_series(1, 200000) g");
    let next = 1;
    let disorder = 0;
    let committed = false;
    const s = collect(conn, options, async (message) => {
      if (message.tag === "change" && message.change.kind === "insert") {
        if (Number(rowValues(message.change.newRow)[0]) !== next) disorder++;
        next++;
      }
      if (message.tag === "commit") committed = true;
      // Yield to the event loop on every message: far slower than the socket delivers.
      await new Promise((r) => setImmediate(r));
    });
    // Don't keep 200k decoded messages in the test either.
    const trim = setInterval(() => s.received.splice(0), 100);
    try {
      await s.waitFor(() => committed, "the commit", 150_000);
    } finally {
      clearInterval(trim);
    }
    expect(next - 1).toBe(200_000);
    expect(disorder).toBe(0);
    // The socket pauses past 1000 messages; one socket read already parsed may still land.
    expect(conn.maxQueued).toBeGreaterThan(1000);
    expect(conn.maxQueued).toBeLessThan(1000 + 2500);
    expect(conn.maxQueuedBytes).toBeLessThan(16 * 1024 * 1024);
    await conn.close();
  }, 180_000);

  test("coalescing: 5,000 single-row transactions written as fast as one backend can arrive whole and in order", async () => {
    const { conn, options } = await setup("trickle", "id int PRIMARY KEY");
    await db.query(`CREATE PROCEDURE trickle_rows(n int) LANGUAGE plpgsql AS $$
      BEGIN FOR i IN 1 .. n LOOP INSERT INTO trickle VALUES (i); COMMIT; END LOOP; END $$`);
    const ids: number[] = [];
    // Long pauses, so that many reads are paused while transactions keep coming (read-gate.test.ts checks when it pauses).
    const s = collect(conn, { ...options, coalesceMs: 20 }, (message) => {
      if (message.tag === "change" && message.change.kind === "insert") ids.push(Number(rowValues(message.change.newRow)[0]));
    });
    await db.query("CALL trickle_rows(5000)");
    await s.waitFor(() => ids.length === 5000, "5,000 rows");
    expect(ids).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    expect(s.commits()).toHaveLength(5000);
    await conn.close();
  }, 60_000);

  test("the byte bound pauses reading too, for wide rows", async () => {
    const { conn, options } = await setup("wide", "id int PRIMARY KEY, v text");
    await db.query("INSERT INTO wide SELECT g, repeat(md5(g::text), 128) FROM generate_series(1, 2000) g");
    let rows = 0;
    let committed = false;
    const s = collect(conn, { ...options, maxQueuedBytes: 256 * 1024 }, async (message) => {
      if (message.tag === "change") rows++;
      if (message.tag === "commit") committed = true;
      await new Promise((r) => setImmediate(r));
    });
    await s.waitFor(() => committed, "the commit", 60_000);
    expect(rows).toBe(2000);
    expect(conn.maxQueued).toBeLessThan(1000);
    // Each row is ~4 kB: the bound plus at most what one socket read had already parsed.
    expect(conn.maxQueuedBytes).toBeGreaterThan(256 * 1024);
    expect(conn.maxQueuedBytes).toBeLessThan(512 * 1024);
    await conn.close();
  }, 60_000);

  test("close() with a handler still running and the socket paused ends promptly; start() waits for the handler", async () => {
    const { conn, options } = await setup("stuck", "id int PRIMARY KEY");
    await db.query("INSERT INTO stuck SELECT generate_series(1, 20000)");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let handled = 0;
    const s = collect(conn, options, async (message) => {
      if (message.tag === "change") {
        handled++;
        await gate;
      }
    });
    await s.waitFor(() => conn.maxQueued > 1000, "the queue to fill and reading to pause");
    const started = Date.now();
    await conn.close();
    expect(Date.now() - started).toBeLessThan(4_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(s.outcome()).toBeUndefined(); // the handler has not returned yet
    release();
    await s.done;
    expect(s.outcome()).toEqual({ ok: true });
    expect(handled).toBe(1); // queued messages were dropped, not delivered after close
    const { rows } = await db.query("SELECT active FROM pg_replication_slots WHERE slot_name = 'stuck_slot'");
    expect(rows[0]?.active).toBe(false);
  });

  test("server errors keep PostgreSQL's text and SQLSTATE", async () => {
    const conn = await connect();
    const missing = await conn.start({ slot: "no_such_slot", publication: "p", startLsn: 0n }, () => {}).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ReplicationError);
    expect((missing as ReplicationError).sqlState).toBe("42704");
    expect((missing as Error).message).toMatch(/replication slot "no_such_slot" does not exist.*SQLSTATE 42704/);
    await conn.createSlot("dup_slot");
    const dup = await conn.createSlot("dup_slot").catch((e: unknown) => e);
    expect((dup as ReplicationError).sqlState).toBe("42710");
    await conn.dropSlot("dup_slot");
    const { rowCount } = await db.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'dup_slot'");
    expect(rowCount).toBe(0);
    await conn.close();
  });

  test("a failing handler stops the stream and start() rejects with its error", async () => {
    const { conn, options } = await setup("boom");
    await db.query("INSERT INTO boom VALUES (1, 'a', NULL)");
    const failure = new Error("apply failed");
    const s = collect(conn, options, (m) => {
      if (m.tag === "change") throw failure;
    });
    await s.done;
    expect(s.outcome()).toEqual({ ok: false, error: failure });
    // The connection is usable again: the walsender left COPY mode cleanly.
    expect((await conn.identifySystem()).dbName).toBe("app");
    await conn.close();
  });
});
