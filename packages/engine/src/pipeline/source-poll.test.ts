// One session per source cluster reads the WAL position and the slots'
// retained WAL for every replication watching it, on a real server.
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startCluster, type Cluster } from "../testing/clusters";
import { waitFor } from "../testing/tenant";
import { pollSource, sourcePollCount, type SourceSample } from "./source-poll";

let cluster: Cluster;
let admin: pg.Client;
const INTERVAL_MS = 50;

beforeAll(async () => {
  cluster = await startCluster();
  admin = await cluster.connect("postgres");
  for (const db of ["tenant_a", "tenant_b"]) {
    await cluster.createDatabase(db);
    const c = await cluster.connect(db);
    await c.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [`slot_${db}`]);
    await c.end();
  }
  await admin.query("CREATE ROLE watcher LOGIN PASSWORD 'watcher-secret'");
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await cluster?.stop();
}, 60_000);

// Client sessions on the cluster but the test's own, by database and user;
// not a backend still authenticating (no user yet), as the watcher with a
// wrong password starts one a beat.
async function sessions(): Promise<{ datname: string; usename: string }[]> {
  const { rows } = await admin.query(
    `SELECT datname, usename FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS NOT NULL ORDER BY datname, usename`,
  );
  return rows;
}

function watch(database: string, slot: string, user = { user: cluster.user, password: cluster.password }) {
  const samples: SourceSample[] = [];
  const config = { host: cluster.host, port: cluster.port, ...user, database };
  const stop = pollSource(config, slot, INTERVAL_MS, (s) => samples.push(s));
  return { samples, stop };
}

test("the watchers of one cluster share a session; each hears its own slot", async () => {
  // Retained WAL: write after the slots were made.
  await admin.query("CREATE TABLE IF NOT EXISTS filler AS SELECT g FROM generate_series(1, 20000) g");
  const a = watch("tenant_a", "slot_tenant_a");
  const b = watch("tenant_b", "slot_tenant_b");
  const absent = watch("tenant_b", "no_such_slot");
  try {
    await waitFor(() => a.samples.length >= 3 && b.samples.length >= 3 && absent.samples.length >= 3, "samples");
    expect(await sessions()).toEqual([{ datname: "tenant_a", usename: cluster.user }]);
    expect(sourcePollCount()).toBe(1);
    // The samples before the reading: WAL only grows, so theirs is at most the reading's.
    const lasts = [[a.samples.at(-1)!, "slot_tenant_a"], [b.samples.at(-1)!, "slot_tenant_b"]] as const;
    const { rows } = await admin.query<{ slot_name: string; retained: string }>(
      "SELECT slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained FROM pg_replication_slots",
    );
    for (const [last, slot] of lasts) {
      expect(last.current).toBeGreaterThan(0n);
      // The slots retain what was written since they were made: the table above, far more than 100 kB.
      expect(last.retainedBytes).toBeGreaterThan(100_000);
      expect(last.retainedBytes).toBeLessThanOrEqual(Number(rows.find((r) => r.slot_name === slot)!.retained));
    }
    expect(absent.samples.at(-1)!.retainedBytes).toBe(0);
    // The position moves with the cluster's writes.
    const before = a.samples.at(-1)!.current;
    await admin.query("INSERT INTO filler SELECT g FROM generate_series(1, 1000) g");
    await waitFor(() => a.samples.at(-1)!.current > before, "the WAL position to move");
  } finally {
    a.stop();
    b.stop();
    absent.stop();
  }
  await waitFor(async () => (await sessions()).length === 0, "the session to close");
  expect(sourcePollCount()).toBe(0);
}, 60_000);

test("the session leaves the database of a watcher that leaves, which can then be dropped", async () => {
  await admin.query("CREATE DATABASE tenant_gone");
  const gone = await cluster.connect("tenant_gone");
  await gone.query("SELECT pg_create_logical_replication_slot('slot_gone', 'pgoutput')");
  await gone.end();
  const first = watch("tenant_gone", "slot_gone");
  const stays = watch("tenant_b", "slot_tenant_b");
  try {
    await waitFor(() => first.samples.length >= 2 && stays.samples.length >= 2, "samples");
    expect(await sessions()).toEqual([{ datname: "tenant_gone", usename: cluster.user }]);
    first.stop();
    const heard = first.samples.length;
    await admin.query("SELECT pg_drop_replication_slot('slot_gone')");
    // Without FORCE: it fails while any session is in that database.
    await waitFor(() => admin.query("DROP DATABASE tenant_gone").then(() => true, () => false), "DROP DATABASE to succeed");
    const now = stays.samples.length;
    await waitFor(() => stays.samples.length >= now + 3, "samples after the move");
    expect(await sessions()).toEqual([{ datname: "tenant_b", usename: cluster.user }]);
    expect(first.samples.length).toBe(heard);
  } finally {
    first.stop();
    stays.stop();
  }
  await waitFor(async () => (await sessions()).length === 0, "the session to close");
}, 60_000);

test("a watcher that throws disturbs neither the others nor the session", async () => {
  // Client backends only: an autovacuum worker may visit the database.
  const CLIENT_PIDS_IN_A = "SELECT pid FROM pg_stat_activity WHERE datname = 'tenant_a' AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
  const config = { host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: "tenant_a" };
  let thrown = 0;
  const stopThrowing = pollSource(config, "slot_tenant_a", INTERVAL_MS, () => {
    thrown++;
    throw new Error("a watcher's own failure");
  });
  const calm = watch("tenant_b", "slot_tenant_b");
  try {
    await waitFor(() => thrown >= 2 && calm.samples.length >= 2, "samples");
    const { rows: before } = await admin.query(CLIENT_PIDS_IN_A);
    const now = calm.samples.length;
    await waitFor(() => thrown >= now + 5 && calm.samples.length >= now + 5, "more samples");
    const { rows: after } = await admin.query(CLIENT_PIDS_IN_A);
    expect(before).toHaveLength(1);
    expect(after).toEqual(before);
  } finally {
    stopThrowing();
    calm.stop();
  }
  await waitFor(async () => (await sessions()).length === 0, "the session to close");
}, 60_000);

test("watchers that reach the cluster as different users do not share a session", async () => {
  const mine = watch("tenant_a", "slot_tenant_a");
  const theirs = watch("tenant_b", "slot_tenant_b", { user: "watcher", password: "watcher-secret" });
  const wrong = watch("tenant_b", "slot_tenant_b", { user: "watcher", password: "not-the-secret" });
  try {
    await waitFor(() => mine.samples.length >= 2 && theirs.samples.length >= 2, "samples");
    expect(await sessions()).toEqual([
      { datname: "tenant_a", usename: cluster.user },
      { datname: "tenant_b", usename: "watcher" },
    ]);
    expect(sourcePollCount()).toBe(3);
    // A watcher whose credentials fail hears nothing, and the others are not held up by it.
    const now = theirs.samples.length;
    await waitFor(() => theirs.samples.length >= now + 3, "more samples");
    expect(wrong.samples).toEqual([]);
  } finally {
    mine.stop();
    theirs.stop();
    wrong.stop();
  }
  await waitFor(async () => (await sessions()).length === 0, "the sessions to close");
  expect(sourcePollCount()).toBe(0);
}, 60_000);
