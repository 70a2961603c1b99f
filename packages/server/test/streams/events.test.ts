// StreamReplicationEvents against real servers on one control plane, with
// real clients (grpc-js with our .proto files; Connect, gRPC-web and gRPC
// from Connect's node transports): the events of a replication's life in
// order with their fields, a target outage and its recovery; resuming by
// cursor across a dropped stream, another server and a server killed with
// kill -9, while two pools append events at once — every event exactly
// once; tenant scope on every protocol; every bad input refused.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { RunningApp } from "../../src/app";
import { EventStore, type EventRecord } from "../../src/store/events";
import { startServerProcess, type ServerProcess } from "../../src/testing/server-process";
import { startWorld, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { startLoad } from "../faults/harness";
import { PROTOCOLS, StreamClients, type Message, type Stream } from "./clients";

const WAL_WARNING_BYTES = 256 * 1024;
let world: World;
let second: RunningApp;
let clients: StreamClients;
let secondClients: StreamClients;
let tenant456: string;
let tenant123: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  // A low WAL threshold: a paused replication's slot passes it after a few writes (WalRetentionHigh).
  world = await startWorld({ users: 300, app: { walRetentionWarningBytes: WAL_WARNING_BYTES } });
  second = await world.startServer();
  clients = new StreamClients(world.app.ports);
  secondClients = new StreamClients(second.ports);
  const key = loadSigningKey(world.dataDir);
  tenant456 = await issueToken(key, { roles: ["Admin"], subject: "tenant-456-admin", tenantId: "tenant-456" });
  tenant123 = await issueToken(key, { roles: ["Viewer"], subject: "tenant-123-viewer", tenantId: "tenant-123" });
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  clients?.close();
  secondClients?.close();
  await world?.close();
}, 120_000);

const rest = (method: string, path: string, body?: unknown) => world.rest(method, path, body);
const head = async () => (await new EventStore(world.pool).head()).head.toString();
const of = (stream: Stream, id: string) => stream.messages.filter((m) => m.replicationId === id);
const has = (stream: Stream, id: string, type: string, pred: (m: Message) => boolean = () => true) => of(stream, id).some((m) => m.eventType === type && pred(m));

/** Appends `n` events of `replicationId` from two pools of their own (as two servers would), in batches of 1–3, some in transactions held open. */
function appendConcurrently(replicationId: string, n: number, tenantId = "tenant-123"): { done: Promise<bigint[]> } {
  const pools = [new pg.Pool({ connectionString: world.control.url("controlplane"), max: 3 }), new pg.Pool({ connectionString: world.control.url("controlplane"), max: 3 })];
  const ids: bigint[] = [];
  let next = 0;
  const appender = async (a: number) => {
    const pool = pools[a % 2]!;
    while (next < n) {
      const batch: EventRecord[] = [];
      for (let b = 0; b < 1 + (next % 3) && next < n; b++, next++) {
        batch.push({ replicationId, tenantId, type: "ConfigChanged", severity: "Info", message: `load ${next}`, details: { n: next, appender: a } });
      }
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        ids.push(...(await new EventStore(client as unknown as pg.Pool).append(batch)));
        if (next % 4 === 0) await client.query("SELECT pg_sleep(0.005)");
        await client.query("COMMIT");
      } finally {
        client.release();
      }
      await sleep(next % 7);
    }
  };
  const done = Promise.all([0, 1, 2, 3, 4, 5].map(appender)).then(() => ids);
  return { done: done.finally(() => Promise.all(pools.map((p) => p.end()))) };
}

/** The log's events of `replicationId` after `cursor`, as the database has them. */
async function logged(replicationId: string, after: string): Promise<string[]> {
  const { rows } = await world.pool.query<{ cursor: string }>("SELECT id::text AS cursor FROM events WHERE replication_id = $1 AND id > $2 ORDER BY events.id", [replicationId, after]);
  return rows.map((r) => r.cursor);
}

test("a replication's life in order, with each kind's fields: syncing per table, a configuration change, the target down (errors with retries, lag exceeded) and back", async () => {
  const stream = clients.events("grpc-js", { tenantId: "tenant-123" }, world.token);
  await waitFor(() => world.app.feeds.events.open === 1, "the subscription");
  const id = await world.createReplication("events_life", ["users", "orders"]);
  expect((await rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitFor(() => has(stream, id, "StatusChanged", (m) => m.details.to === "Streaming"), "Streaming", 60_000);
  expect((await rest("PATCH", `/replications/${id}`, { config: { max_lag_seconds: 1 } })).status).toBe(200);
  await waitFor(() => has(stream, id, "ConfigChanged"), "ConfigChanged");

  const load = startLoad(world.east, "production_db");
  try {
    await sleep(500);
    await world.west.halt("immediate");
    try {
      await waitFor(() => of(stream, id).filter((m) => m.eventType === "ReplicationError").length >= 2, "two failed attempts", 60_000);
      await waitFor(() => has(stream, id, "REPLICATION_LAG_EXCEEDED"), "lag exceeded", 60_000);
    } finally {
      await world.west.resume();
    }
    await waitFor(() => has(stream, id, "ReplicationRecovered"), "recovered", 90_000);
  } finally {
    await load.stop();
  }
  await waitFor(() => has(stream, id, "ReplicationLagRecovered"), "lag back within bounds", 60_000);
  stream.cancel();
  await stream.ended;

  const events = of(stream, id);
  // In the log's order, each once, with the tenant, a time and a cursor that resumes after it.
  const cursors = events.map((e) => BigInt(e.cursor));
  expect(cursors).toEqual([...cursors].sort((a, b) => (a < b ? -1 : 1)));
  expect(new Set(cursors).size).toBe(cursors.length);
  expect(events.map((e) => e.cursor)).toEqual((await logged(id, String(cursors[0]! - 1n))).slice(0, events.length));
  for (const e of events) {
    expect(e.tenantId).toBe("tenant-123");
    expect(Number(e.timestamp.seconds)).toBeGreaterThan(0);
    expect(["Info", "Warning", "Error", "Critical"]).toContain(e.severity);
  }
  // Status changes chain, from Initializing through Syncing to Streaming, then Error and back.
  const statuses = events.filter((e) => e.eventType === "StatusChanged").map((e) => e.details);
  statuses.forEach((s, i) => i > 0 && expect(s.from).toBe(statuses[i - 1]!.to));
  const to = statuses.map((s) => s.to);
  expect(to.indexOf("Syncing")).toBeGreaterThanOrEqual(0);
  expect(to.indexOf("Streaming")).toBeGreaterThan(to.indexOf("Syncing"));
  expect(statuses.map((s) => s.to)).toContain("Error");
  expect(statuses[statuses.length - 1]!.to).toBe("Streaming");
  expect(events.find((e) => e.eventType === "StatusChanged" && e.details.to === "Error")!.severity).toBe("Error");
  // Per table: started, then completed, while Syncing.
  const syncing = events.findIndex((e) => e.eventType === "StatusChanged" && e.details.to === "Syncing");
  const streaming = events.findIndex((e) => e.eventType === "StatusChanged" && e.details.to === "Streaming");
  for (const table of ["users", "orders"]) {
    const started = events.findIndex((e) => e.eventType === "InitialSyncStarted" && e.details.table === table);
    const completed = events.findIndex((e) => e.eventType === "InitialSyncCompleted" && e.details.table === table);
    expect(started, table).toBeGreaterThan(syncing);
    expect(completed, table).toBeGreaterThan(started);
    expect(completed, table).toBeLessThan(streaming);
    expect(Number(events[completed]!.details.rows_copied), table).toBeGreaterThan(0);
    expect(events[started]!.severity).toBe("Info");
  }
  const config = events.find((e) => e.eventType === "ConfigChanged")!;
  expect(config.details).toMatchObject({ fields: "max_lag_seconds", applied: "live", by: "test" });
  // Every failed attempt: the side, its code (and SQLSTATE when PostgreSQL answered one), its number.
  const errors = events.filter((e) => e.eventType === "ReplicationError");
  expect(errors.map((e) => e.details.retry_count)).toEqual(errors.map((_, i) => String(i + 1)));
  for (const e of errors) {
    expect(e.severity).toBe("Error");
    expect(e.details).toMatchObject({ side: "target", retryable: "true" });
    expect(e.details.error_code).toBeTruthy();
    expect(e.details.retry_in_seconds).toMatch(/^\d+\.\d$/);
    if (e.details.sqlstate) expect(e.details.sqlstate).toMatch(/^[0-9A-Z]{5}$/);
  }
  const lag = events.find((e) => e.eventType === "REPLICATION_LAG_EXCEEDED")!;
  expect(lag.severity).toBe("Warning");
  expect(lag.details.max_lag_seconds).toBe("1");
  expect(Number(lag.details.current_lag_seconds)).toBeGreaterThan(1);
  const recovered = events.find((e) => e.eventType === "ReplicationRecovered")!;
  expect(recovered.severity).toBe("Info");
  expect(recovered.details.retry_count).toBe(String(errors.length));
  const lagBack = events.find((e) => e.eventType === "ReplicationLagRecovered")!;
  expect(lagBack.severity).toBe("Info");
  expect(events.indexOf(lagBack)).toBeGreaterThan(events.indexOf(lag));
  await waitFor(() => world.app.feeds.events.open === 0, "the subscription freed");
}, 300_000);

test("the initial sync of a large table reports 25, 50 and 75 % once each, between its start and its completion, with the figures the copy observed", async () => {
  // A table of its own, large enough for the copy to report progress in between, with the catalog's row estimate.
  const ROWS = 40_000;
  const source = await world.east.connect("production_db");
  try {
    await source.query("CREATE TABLE IF NOT EXISTS sync_progress (id int PRIMARY KEY, note text)");
    await source.query("INSERT INTO sync_progress SELECT g, 'row ' || g FROM generate_series(1, $1::int) g ON CONFLICT DO NOTHING", [ROWS]);
    await source.query("ANALYZE sync_progress");
  } finally {
    await source.end();
  }
  const stream = clients.events("grpc-web", { eventTypes: ["InitialSyncStarted", "InitialSyncProgress", "InitialSyncCompleted"] }, world.token);
  await waitFor(() => world.app.feeds.events.open === 1, "the subscription");
  const id = await world.createReplication("events_sync_progress", ["sync_progress"]);
  expect((await rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitFor(() => has(stream, id, "InitialSyncCompleted"), "the copy completed", 120_000);
  stream.cancel();
  await stream.ended;

  const events = of(stream, id);
  expect(events.map((e) => e.eventType)).toEqual(["InitialSyncStarted", "InitialSyncProgress", "InitialSyncProgress", "InitialSyncProgress", "InitialSyncCompleted"]);
  for (const e of events) {
    expect(e.severity).toBe("Info");
    expect(e.tenantId).toBe("tenant-123");
    expect(e.details.table).toBe("sync_progress");
  }
  const progress = events.slice(1, 4);
  expect(progress.map((e) => e.details.progress_percent)).toEqual(["25", "50", "75"]);
  // Each figure is the copy's own at that moment: rows copied past the quarter it reports, counting up, never past the end.
  const estimated = Number(events[0]!.details.rows_estimated);
  expect(estimated).toBeGreaterThan(ROWS * 0.9);
  progress.forEach((e, i) => {
    expect(e.message).toBe(`sync_progress: ${(i + 1) * 25}% copied`);
    expect(Number(e.details.rows_copied)).toBeGreaterThanOrEqual((estimated * (i + 1)) / 4);
    expect(Number(e.details.rows_copied)).toBeLessThan(ROWS);
    expect(Number(e.details.bytes_copied)).toBeGreaterThan(0);
    if (i > 0) expect(Number(e.details.rows_copied)).toBeGreaterThan(Number(progress[i - 1]!.details.rows_copied));
  });
  expect(Number(events[4]!.details.rows_copied)).toBe(ROWS);
  // The target holds what the completion says was copied.
  const target = await world.west.connect("events_sync_progress");
  try {
    const { rows } = await target.query<{ n: number }>("SELECT count(*)::int AS n FROM sync_progress");
    expect(rows[0]!.n).toBe(ROWS);
  } finally {
    await target.end();
  }
  expect((await rest("DELETE", `/replications/${id}`)).status).toBeLessThan(300);
}, 180_000);

test("a paused replication whose slot retains WAL past the threshold raises WalRetentionHigh once, a Warning with the bytes retained", async () => {
  const stream = clients.events("connect", { eventTypes: ["WalRetentionHigh", "StatusChanged"] }, world.token);
  await waitFor(() => world.app.feeds.events.open === 1, "the subscription");
  const id = await world.createReplication("events_wal", ["users"]);
  expect((await rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitFor(() => has(stream, id, "StatusChanged", (m) => m.details.to === "Streaming"), "Streaming", 60_000);
  expect((await rest("POST", `/replications/${id}/pause`)).status).toBe(200);
  await waitFor(() => has(stream, id, "StatusChanged", (m) => m.details.to === "Paused"), "Paused", 60_000);
  expect(has(stream, id, "WalRetentionHigh")).toBe(false);
  // Writes the slot must keep while paused, well past the threshold.
  const source = await world.east.connect("production_db");
  try {
    await source.query("CREATE TABLE IF NOT EXISTS wal_filler (id serial PRIMARY KEY, pad text)");
    await source.query("INSERT INTO wal_filler (pad) SELECT repeat('x', 1000) FROM generate_series(1, 2000)");
  } finally {
    await source.end();
  }
  await waitFor(() => has(stream, id, "WalRetentionHigh"), "WalRetentionHigh", 60_000);
  const warning = of(stream, id).find((m) => m.eventType === "WalRetentionHigh")!;
  expect(warning.severity).toBe("Warning");
  expect(warning.tenantId).toBe("tenant-123");
  expect(Number(warning.details.retained_bytes)).toBeGreaterThan(WAL_WARNING_BYTES);
  expect(warning.message).toContain(warning.details.retained_bytes);
  // Once per pause: the next passes of the watch find it still high and say nothing more.
  await sleep(3_000);
  expect(of(stream, id).filter((m) => m.eventType === "WalRetentionHigh")).toHaveLength(1);
  stream.cancel();
  await stream.ended;
  expect((await rest("DELETE", `/replications/${id}`)).status).toBeLessThan(300);
}, 180_000);

test("resumed by its cursor after a dropped stream, on another server and over another protocol, while two pools append: every event exactly once, in order", async () => {
  const id = await world.createReplication("events_resume", ["users"]);
  const from = await head();
  const load = appendConcurrently(id, 600);
  // A few real events too, from both servers: configuration changes.
  const patches = (async () => {
    for (let i = 0; i < 10; i++) await world.rest("PATCH", `/replications/${id}`, { config: { priority: 10 + i } }, i % 2 ? second : world.app);
  })();
  const received: Message[] = [];
  let cursor = from;
  const legs: [StreamClients, (typeof PROTOCOLS)[number]][] = [
    [clients, "grpc-js"],
    [secondClients, "connect"],
    [clients, "grpc-web"],
    [secondClients, "grpc"],
  ];
  let leg = 0;
  let settled = false;
  const writers = Promise.all([load.done, patches]).finally(() => (settled = true));
  for (;;) {
    const [on, protocol] = legs[leg++ % legs.length]!;
    const stream = on.events(protocol, { replicationId: id, cursor }, world.token);
    // Each leg takes some events while the writers write (all that are left, once they are done), then the client drops it.
    if (!settled) await Promise.race([stream.received(120), writers]).catch(() => undefined);
    if (settled) await stream.received((await logged(id, from)).length - received.length).catch(() => undefined);
    const taken = stream.messages.slice();
    stream.cancel();
    await stream.ended;
    received.push(...taken);
    if (taken.length > 0) cursor = taken[taken.length - 1]!.cursor;
    if (settled && received.length >= (await logged(id, from)).length) break;
  }
  const cursors = received.map((m) => m.cursor);
  expect(new Set(cursors).size).toBe(cursors.length);
  expect(cursors).toEqual(await logged(id, from));
  const appended = (await load.done).map(String);
  expect(cursors.filter((c) => appended.includes(c))).toEqual([...appended].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)));
  expect(received.filter((m) => m.message.startsWith("configuration changed"))).toHaveLength(10);
  await waitFor(() => world.app.feeds.events.open === 0 && second.feeds.events.open === 0, "every subscription freed");
}, 240_000);

test("resumed after its server is killed with kill -9, on another server, while two pools append: every event exactly once", async () => {
  // The world's data directory: the same master key (connection passwords) and token key.
  const proc: ServerProcess = await startServerProcess({ databaseUrl: world.control.url("controlplane"), dataDir: world.dataDir, tickMs: 200, allowHosts: world.allowHosts });
  cleanups.push(() => proc.kill());
  const http = Number(new URL(proc.urls.rest).port);
  const grpcPort = Number(new URL(proc.urls.grpc).port);
  const procClients = new StreamClients({ http, grpc: grpcPort });
  cleanups.push(() => procClients.close());
  const id = await world.createReplication("events_kill", ["users"]);
  const from = await head();
  const load = appendConcurrently(id, 500);
  const first = procClients.events("grpc-js", { replicationId: id, cursor: from }, world.token);
  await first.received(100);
  await proc.kill();
  const ending = await first.ended;
  expect(ending.code).not.toBe("OK");
  const before = first.messages.slice();
  const resumed = clients.events("connect", { replicationId: id, cursor: before[before.length - 1]!.cursor }, world.token);
  const all = await load.done;
  const total = (await logged(id, from)).length;
  expect(total).toBe(all.length);
  await resumed.received(total - before.length);
  await sleep(200);
  resumed.cancel();
  const cursors = [...before, ...resumed.messages].map((m) => m.cursor);
  expect(new Set(cursors).size).toBe(cursors.length);
  expect(cursors).toEqual(await logged(id, from));
}, 240_000);

test("a tenant's token receives its tenant's events only, on every protocol; another tenant's replication is NOT_FOUND and another tenant_id FORBIDDEN", async () => {
  const theirs = await world.createReplication("events_scope", ["users"]);
  const from = await head();
  const streams = PROTOCOLS.map((p) => clients.events(p, { cursor: from }, tenant456));
  const filtered = PROTOCOLS.map((p) => secondClients.events(p, { cursor: from, severities: ["Info"] }, tenant456));
  const own = clients.events("grpc-js", { cursor: from, replicationId: theirs }, tenant123);
  const marker = randomUUID();
  const events = new EventStore(world.pool);
  await events.append([
    { replicationId: theirs, tenantId: "tenant-123", type: "StatusChanged", severity: "Info", message: "tenant-123's", details: {} },
    { replicationId: "", tenantId: "", type: "ConfigurationWarning", severity: "Info", message: "nobody's", details: {} },
  ]);
  await world.rest("PATCH", `/replications/${theirs}`, { config: { priority: 42 } });
  await events.append([{ replicationId: marker, tenantId: "tenant-456", type: "StatusChanged", severity: "Info", message: "tenant-456's", details: {} }]);
  for (const s of [...streams, ...filtered]) {
    await waitFor(() => s.messages.some((m) => m.replicationId === marker), "tenant-456's event");
  }
  await own.received(2);
  for (const s of [...streams, ...filtered, own]) s.cancel();
  for (const s of [...streams, ...filtered]) {
    expect(s.messages.map((m) => m.tenantId)).toEqual(s.messages.map(() => "tenant-456"));
    expect(s.messages.map((m) => m.message)).toEqual(["tenant-456's"]);
  }
  expect(own.messages.map((m) => m.message).slice(0, 2)).toEqual(["tenant-123's", expect.stringContaining("configuration changed")]);
  for (const protocol of PROTOCOLS) {
    const notFound = await clients.events(protocol, { replicationId: theirs }, tenant456).ended;
    expect(notFound, protocol).toMatchObject({ code: "NOT_FOUND", grpcCode: 5, details: { replication_id: theirs } });
    const forbidden = await secondClients.events(protocol, { tenantId: "tenant-123" }, tenant456).ended;
    expect(forbidden, protocol).toMatchObject({ code: "FORBIDDEN", grpcCode: 7 });
  }
}, 120_000);

test("every bad request is refused, naming the field: cursors malformed or past the log, unknown severities and types, ids that are no UUID", async () => {
  const past = (BigInt(await head()) + 1000n).toString();
  const cases: [Message, string][] = [
    [{ cursor: "abc" }, "cursor"],
    [{ cursor: "-1" }, "cursor"],
    [{ cursor: "1e3" }, "cursor"],
    [{ cursor: "99999999999999999999" }, "cursor"],
    [{ cursor: past }, "cursor"],
    [{ severities: ["Fatal"] }, "severities[0]"],
    [{ eventTypes: ["StatusChanged", "Nope"] }, "event_types[1]"],
    [{ replicationId: "not-a-uuid" }, "replication_id"],
  ];
  for (const protocol of PROTOCOLS) {
    for (const [request, field] of cases) {
      const ending = await clients.events(protocol, request, world.token).ended;
      // An id that is no UUID is refused by the input check every RPC shares (INVALID_REQUEST), before the feed.
      const code = field === "replication_id" ? "INVALID_REQUEST" : "VALIDATION_ERROR";
      expect(ending, `${protocol} ${JSON.stringify(request)}`).toMatchObject({ code, grpcCode: 3 });
      expect((ending.details.violations as { field: string }[]).map((v) => v.field)).toEqual([field]);
    }
  }
}, 120_000);

test("a cursor older than the retention is refused as expired, saying which cursor is the oldest that resumes", async () => {
  const id = await world.createReplication("events_expired", ["users"]);
  const events = new EventStore(world.pool, { maxAgeDays: 30, maxRows: 3 });
  const ids = await events.append(Array.from({ length: 6 }, (_, n): EventRecord => ({ replicationId: id, tenantId: "tenant-123", type: "StatusChanged", severity: "Info", message: `${n}`, details: {} })));
  await events.prune();
  const { prunedThrough } = await events.head();
  for (const protocol of PROTOCOLS) {
    const ending = await clients.events(protocol, { replicationId: id, cursor: String(ids[0]) }, world.token).ended;
    expect(ending, protocol).toMatchObject({ code: "VALIDATION_ERROR", details: { cursor: String(ids[0]), oldest_cursor: String(prunedThrough) } });
    expect(ending.message).toMatch(/expired/);
  }
  // The oldest cursor that resumes: the three events kept.
  const stream = clients.events("grpc-js", { replicationId: id, cursor: String(prunedThrough) }, world.token);
  expect((await stream.received(3)).map((m) => m.message)).toEqual(["3", "4", "5"]);
  stream.cancel();
}, 60_000);
