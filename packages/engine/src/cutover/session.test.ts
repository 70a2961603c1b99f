// A cutover's primitives on sessions the caller opened before its fence
// (TenantDatabase.session): they use those and open none of their own — the
// connection settings given here reach no server, so any session a primitive
// opened itself would fail — and leave them open for the next one.
import { afterAll, beforeAll, expect, test } from "vitest";
import { connect } from "../connect";
import { copyColumnDefaults, fence, holdSnapshot, syncSequences, unfence, verify, type TenantDatabase } from "./index";
import { startBench, type Bench } from "../testing/replication";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const TABLES = ["users", "orders", "products"];

test("fence, sequences, defaults, a held snapshot, verify and unfence run on the lent sessions, which stay open", async () => {
  const r = await bench.replicate({}, { users: 100 });
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  const [sourceSession, targetSession] = await Promise.all([connect({ connectionString: bench.source.url(r.name) }), connect({ connectionString: bench.target.url(r.name) })]);
  // Nobody listens there: a primitive that opened its own session would fail.
  const nowhere = { host: "127.0.0.1", port: 1, user: "nobody", database: "none", connectionTimeoutMillis: 2_000 };
  const source: TenantDatabase = { connection: nowhere, schema: "public", session: sourceSession };
  const target: TenantDatabase = { connection: nowhere, schema: "public", session: targetSession };
  try {
    const f = await fence(source, TABLES, { lockTimeoutMs: 2_000 });
    await r.pipeline.drainTo(f.finalLsn, { timeoutMs: 30_000 });
    expect((await syncSequences(source, target, TABLES)).map((q) => q.target).sort()).toEqual(["public.orders_id_seq", "public.users_id_seq"]);
    expect((await copyColumnDefaults(source, target, TABLES)).failed).toEqual([]);
    const held = await holdSnapshot(target);
    await held.release();
    const checked = await verify(source, { ...target, session: undefined, connection: { connectionString: bench.target.url(r.name) } }, TABLES, { checksum: true });
    expect(checked.ok).toBe(true);
    expect((await unfence(source, TABLES)).dropped.length).toBe(3);
    // Both still open, out of any transaction.
    for (const session of [sourceSession, targetSession]) {
      expect((await session.query("SELECT 1 AS one, now() = statement_timestamp() AS outside")).rows[0]).toEqual({ one: 1, outside: true });
    }
  } finally {
    await Promise.all([sourceSession.end(), targetSession.end()]);
  }
}, 120_000);
