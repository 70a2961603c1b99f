// The job runner on real servers sharing one real control plane, with the
// test kinds (testing/test-jobs.ts) whose steps record what ran where. A
// server "crashes" by halt(): its steps end and it records and releases
// nothing, so its leases lapse as a dead server's do (test/faults/jobs.test.ts
// kills a real process).
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { startApp, type RunningApp } from "../app";
import { createPool } from "../store/db";
import { JobStore, type JobRow } from "../store/jobs";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { installTestJobs, openGate, runsOf, testJobKinds, type Run } from "../testing/test-jobs";

const LEASE_SECONDS = 3;
let cp: ControlPlane;
let jobs: JobStore;
const dataDir = mkdtempSync(join(tmpdir(), "heliosdb-jobs-"));
// The servers of the running test, closed after it (also when it failed).
const nodes: { app: RunningApp; pool: pg.Pool }[] = [];

beforeAll(async () => {
  cp = await startControlPlane();
  await installTestJobs(cp.pool);
  jobs = new JobStore(cp.pool);
}, 120_000);

afterEach(async () => {
  // A gated step that cannot run again would hold its server's shutdown: every gate opens.
  await cp.pool.query("INSERT INTO test_job_gates (job_id, step) SELECT id, '*' FROM jobs ON CONFLICT DO NOTHING");
  for (const { app, pool } of nodes.splice(0)) {
    await app.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }
}, 60_000);

afterAll(async () => {
  await cp?.close();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

async function node(): Promise<RunningApp> {
  const pool = createPool(cp.url());
  const app = await startApp({
    db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 200, leaseSeconds: LEASE_SECONDS,
    jobKinds: testJobKinds(pool), log: () => undefined,
  });
  nodes.push({ app, pool });
  return app;
}

const job = async (id: string) => (await jobs.get(id))!;
const status = (row: JobRow) => Object.fromEntries(row.steps.map((s) => [s.step, s.status]));
const ended = (id: string) => waitFor(async () => !["Pending", "InProgress"].includes((await job(id)).status), `job ${id} to end`, 30_000).then(() => job(id));
const did = (runs: Run[], action: string) => runs.filter((r) => r.action === action).map((r) => `${r.step}@${r.attempt}`);

/** Waits until step `step` of the job runs (its start recorded and the step itself begun); the server that runs it. */
async function running(id: string, step: string, servers: RunningApp[]): Promise<{ holder: RunningApp; other: RunningApp }> {
  await waitFor(async () => (await runsOf(cp.pool, id)).some((r) => r.step === step && r.action === "run"), `${step} to run`, 30_000);
  const { lease } = await job(id);
  const holder = servers.find((s) => s.orchestrator.nodeId === lease?.owner)!;
  expect(holder, "a server of the test holds the job").toBeDefined();
  expect(holder.orchestrator.runningJobs).toContain(id);
  return { holder, other: servers.find((s) => s !== holder)! };
}

/** No two runs of the job's steps overlap: each run's end (or abort) is recorded before the next run begins. */
function expectOneAtATime(runs: Run[]): void {
  let open: Run | undefined;
  for (const r of runs.filter((r) => ["run", "end", "aborted", "failed"].includes(r.action))) {
    if (r.action === "run") {
      expect(open, `${r.step} began on ${r.node} while ${open?.step} ran on ${open?.node}`).toBeUndefined();
      open = r;
    } else {
      expect(open?.step).toBe(r.step);
      open = undefined;
    }
  }
}

test("a job runs its steps in order, each step's start, outcome, duration and outputs recorded", async () => {
  const a = await node();
  const created = await a.orchestrator.submit("test.quick", { input: "x" });
  const done = await ended(created.id);
  expect(done.status).toBe("Completed");
  expect(done.rollbackStatus).toBeNull();
  for (const s of done.steps) {
    expect(s).toMatchObject({ status: "Completed", attempts: 1, error: null, details: { attempt: 1 } });
    expect(s.completedAt!.getTime()).toBeGreaterThanOrEqual(s.startedAt!.getTime());
    // Measured by the database from the two records (in microseconds; the dates here are milliseconds).
    expect(Math.abs(s.durationMs! - (s.completedAt!.getTime() - s.startedAt!.getTime()))).toBeLessThanOrEqual(1);
  }
  // Each step began after the one before ended.
  for (let i = 1; i < done.steps.length; i++) expect(done.steps[i]!.startedAt!.getTime()).toBeGreaterThanOrEqual(done.steps[i - 1]!.completedAt!.getTime());
  expect(done.state).toEqual({ input: "x", one_by: a.orchestrator.nodeId, two_by: a.orchestrator.nodeId, three_by: a.orchestrator.nodeId });
  expect(did(await runsOf(cp.pool, created.id), "end")).toEqual(["one@1", "two@1", "three@1"]);
  expect(done.lease).toBeNull();
}, 60_000);

test("outputs a step saves side by side are all kept, in the store and in the state the step reads", async () => {
  const a = await node();
  const { id } = await a.orchestrator.submit("test.saves", {});
  const done = await ended(id);
  expect(done.status).toBe("Completed");
  const outputs = ["outputs_by", ...Array.from({ length: 20 }, (_, i) => `outputs_${i}`)].sort();
  expect(Object.keys(done.state).sort()).toEqual(outputs);
  const end = (await runsOf(cp.pool, id)).find((r) => r.action === "end")!;
  expect(end.note.split(",")).toEqual(outputs);
}, 60_000);

test("a server that crashes in a re-runnable step: the next holder runs that step again, and only once the crashed one stopped", async () => {
  const servers = [await node(), await node()];
  const { id } = await servers[0]!.orchestrator.submit("test.resume", {});
  const { holder, other } = await running(id, "work", servers);
  await holder.orchestrator.halt();
  // As a crash: nothing recorded, the lease kept until it lapses.
  const crashed = await job(id);
  expect(status(crashed)).toEqual({ prepare: "Completed", work: "InProgress", finish: "Pending" });
  expect(crashed.lease?.owner).toBe(holder.orchestrator.nodeId);
  await waitFor(async () => (await runsOf(cp.pool, id)).some((r) => r.step === "work" && r.attempt === 2), "the other server to run work again", 30_000);
  expect(other.orchestrator.runningJobs).toContain(id);
  await openGate(cp.pool, id, "work");
  const done = await ended(id);
  expect(done.status).toBe("Completed");
  expect(done.steps.map((s) => s.attempts)).toEqual([1, 2, 1]);
  const runs = await runsOf(cp.pool, id);
  expect(did(runs, "run")).toEqual(["prepare@1", "work@1", "work@2", "finish@1"]);
  expect(runs.filter((r) => r.action === "run").map((r) => r.node)).toEqual([holder, holder, other, other].map((s) => s.orchestrator.nodeId));
  expect(runs.find((r) => r.action === "aborted")).toMatchObject({ step: "work", note: "halt", node: holder.orchestrator.nodeId });
  expectOneAtATime(runs);
  // The new holder's epoch fences the old one's writes.
  expect(runs.at(-1)!.epoch).toBeGreaterThan(runs[0]!.epoch);
  expect(done.state).toMatchObject({ prepare_by: holder.orchestrator.nodeId, work_by: other.orchestrator.nodeId, finish_by: other.orchestrator.nodeId });
}, 90_000);

test("a server that crashes in a step that cannot run again: the next holder rolls back, last step first", async () => {
  const servers = [await node(), await node()];
  const { id } = await servers[1]!.orchestrator.submit("test.once", {});
  const { holder, other } = await running(id, "work", servers);
  await holder.orchestrator.halt();
  const done = await ended(id);
  expect(done).toMatchObject({ status: "RolledBack", rollbackStatus: "Completed" });
  expect(status(done)).toEqual({ prepare: "RolledBack", work: "RolledBack", finish: "Pending" });
  expect(done.steps[1]!.error).toMatch(/interrupted.*cannot safely run again/);
  expect(done.error).toMatch(/^work: interrupted/);
  const runs = await runsOf(cp.pool, id);
  expect(did(runs, "run")).toEqual(["prepare@1", "work@1"]);
  expect(runs.filter((r) => r.action === "rollback").map((r) => [r.step, r.node])).toEqual([
    ["work", other.orchestrator.nodeId],
    ["prepare", other.orchestrator.nodeId],
  ]);
}, 90_000);

test("a holder whose lease is taken from it aborts the step and records nothing more", async () => {
  const servers = [await node(), await node()];
  const { id } = await servers[0]!.orchestrator.submit("test.resume", {});
  const { holder } = await running(id, "work", servers);
  // Another owner, as when this server was presumed dead.
  await cp.pool.query("UPDATE jobs SET lease_owner = 'elsewhere', lease_epoch = lease_epoch + 1, lease_expires_at = now() + interval '1 hour' WHERE id = $1", [id]);
  await waitFor(async () => (await runsOf(cp.pool, id)).some((r) => r.action === "aborted"), "the step to be aborted", 30_000);
  expect((await runsOf(cp.pool, id)).find((r) => r.action === "aborted")).toMatchObject({ step: "work", note: "lease", node: holder.orchestrator.nodeId });
  await waitFor(() => !holder.orchestrator.runningJobs.includes(id), "the holder to let it go", 10_000);
  const taken = await job(id);
  expect(status(taken)).toEqual({ prepare: "Completed", work: "InProgress", finish: "Pending" });
  expect(taken.lease?.owner).toBe("elsewhere");
  // Its owner gives it up: a server resumes it.
  await cp.pool.query("UPDATE jobs SET lease_owner = NULL WHERE id = $1", [id]);
  await openGate(cp.pool, id, "work");
  expect((await ended(id)).status).toBe("Completed");
  expectOneAtATime(await runsOf(cp.pool, id));
}, 90_000);

test("a failed step rolls the job back, itself included; a rollback that fails leaves the job Failed for a person", async () => {
  const a = await node();
  const failed = await a.orchestrator.submit("test.resume", { fail: ["finish"] });
  await openGate(cp.pool, failed.id, "*");
  const rolledBack = await ended(failed.id);
  expect(rolledBack).toMatchObject({ status: "RolledBack", rollbackStatus: "Completed", error: "finish: finish failed as asked" });
  expect(status(rolledBack)).toEqual({ prepare: "RolledBack", work: "RolledBack", finish: "RolledBack" });
  expect(rolledBack.steps[2]!.error).toBe("finish failed as asked");
  expect(did(await runsOf(cp.pool, failed.id), "rollback")).toEqual(["finish@1", "work@1", "prepare@1"]);

  const stuck = await a.orchestrator.submit("test.resume", { fail: ["finish"], failRollback: ["work"] });
  await openGate(cp.pool, stuck.id, "*");
  const left = await ended(stuck.id);
  expect(left).toMatchObject({ status: "Failed", rollbackStatus: "Failed" });
  expect(left.error).toBe("finish: finish failed as asked; the rollback of work failed: the rollback of work failed as asked");
  expect(status(left)).toEqual({ prepare: "Completed", work: "Completed", finish: "RolledBack" });
  expect(did(await runsOf(cp.pool, stuck.id), "rollback")).toEqual(["finish@1", "work@1"]);
}, 60_000);

test("a cancel before the step that cannot be cancelled rolls back; once that step began it is refused", async () => {
  const servers = [await node(), await node()];
  const early = await servers[0]!.orchestrator.submit("test.cancel", {});
  const { other } = await running(early.id, "copy", servers);
  // Asked of the server that does not run it.
  expect(await other.orchestrator.cancel(early.id)).toBe("cancelling");
  const cancelled = await ended(early.id);
  expect(cancelled).toMatchObject({ status: "Cancelled", rollbackStatus: "Completed", error: "cancelled on request" });
  expect(cancelled.cancelRequestedAt).not.toBeNull();
  expect(status(cancelled)).toEqual({ copy: "RolledBack", cutover: "Pending", cleanup: "Pending" });
  expect(cancelled.steps[0]!.error).toBe("cancelled while it ran");
  const runs = await runsOf(cp.pool, early.id);
  expect(runs.map((r) => `${r.step}:${r.action}`)).toEqual(["copy:run", "copy:aborted", "copy:rollback"]);
  expect(await other.orchestrator.cancel(early.id)).toBe("ended");

  const late = await servers[1]!.orchestrator.submit("test.cancel", {});
  await openGate(cp.pool, late.id, "copy");
  await running(late.id, "cutover", servers);
  expect(await servers[0]!.orchestrator.cancel(late.id)).toBe("refused");
  expect(await servers[1]!.orchestrator.cancel(late.id)).toBe("refused");
  await openGate(cp.pool, late.id, "cutover");
  const done = await ended(late.id);
  expect(done).toMatchObject({ status: "Completed", rollbackStatus: null, cancelRequestedAt: null });
  expect(did(await runsOf(cp.pool, late.id), "rollback")).toEqual([]);
  expect(await servers[0]!.orchestrator.cancel("00000000-0000-4000-8000-000000000000")).toBe("not_found");
}, 90_000);

test("a shutdown hands a re-runnable step to the next holder at once, and lets a step that cannot run again finish first", async () => {
  const servers = [await node(), await node()];
  const resumable = await servers[0]!.orchestrator.submit("test.resume", {});
  const first = await running(resumable.id, "work", servers);
  await first.holder.close();
  // Released, not left to lapse: the other server has it (or may take it now).
  expect((await job(resumable.id)).lease?.owner ?? first.other.orchestrator.nodeId).toBe(first.other.orchestrator.nodeId);
  await waitFor(async () => (await runsOf(cp.pool, resumable.id)).some((r) => r.step === "work" && r.attempt === 2), "work to run again", 30_000);
  expect((await runsOf(cp.pool, resumable.id)).find((r) => r.action === "aborted")?.note).toBe("shutdown");
  await openGate(cp.pool, resumable.id, "work");
  expect((await ended(resumable.id)).status).toBe("Completed");

  const third = await node();
  const once = await third.orchestrator.submit("test.once", {});
  const second = await running(once.id, "work", [first.other, third]);
  const closing = second.holder.close();
  await openGate(cp.pool, once.id, "work");
  await closing;
  const done = await ended(once.id);
  expect(done.status).toBe("Completed");
  expect(done.steps.map((s) => s.attempts)).toEqual([1, 1, 1]);
  const runs = await runsOf(cp.pool, once.id);
  expect(runs.filter((r) => r.step === "work").map((r) => r.action)).toEqual(["run", "end"]);
  // It finished on the server that shut down, and the rest ran on the other.
  expect(runs.find((r) => r.step === "finish")?.node).toBe(second.other.orchestrator.nodeId);
}, 90_000);

test("two servers taking jobs, signalled and unsignalled: every step runs once, never two at a time", async () => {
  const servers = [await node(), await node()];
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push((await servers[i % 2]!.orchestrator.submit("test.quick", { n: i })).id);
  // And jobs no server was told of: the passes take them.
  for (let i = 0; i < 4; i++) {
    const row = await jobs.insert({ id: randomUUID(), kind: "test.quick", steps: servers[0]!.orchestrator.plan("test.quick")!, state: {} });
    ids.push(row.id);
  }
  for (const id of ids) {
    const done = await ended(id);
    expect(done.status).toBe("Completed");
    const runs = await runsOf(cp.pool, id);
    expect(did(runs, "run")).toEqual(["one@1", "two@1", "three@1"]);
    expect(did(runs, "end")).toEqual(["one@1", "two@1", "three@1"]);
    expectOneAtATime(runs);
  }
}, 90_000);
