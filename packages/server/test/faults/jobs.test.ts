// The fault suite's jobs: `kill -9` of a server process in the middle of a
// job's step. The dead server's lease holds until it lapses; then another
// server takes the job and resumes it at the recorded step when that step is
// re-runnable, or rolls it back when it is not. The test kinds' steps record
// what ran where (src/testing/test-jobs.ts).
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startApp, type RunningApp } from "../../src/app";
import { planOf } from "../../src/orchestrator/job-kind";
import { createPool } from "../../src/store/db";
import { JobSignals } from "../../src/store/job-signals";
import { JobStore } from "../../src/store/jobs";
import { startControlPlane, type ControlPlane } from "../../src/testing/control-plane";
import { startServerProcess, type ServerProcess } from "../../src/testing/server-process";
import { installTestJobs, openGate, runsOf, testJobKinds } from "../../src/testing/test-jobs";

let cp: ControlPlane;
let jobs: JobStore;
let server: ServerProcess | undefined;
let survivor: { app: RunningApp; pool: pg.Pool } | undefined;
const dataDir = mkdtempSync(join(tmpdir(), "heliosdb-jobs-faults-"));

beforeAll(async () => {
  cp = await startControlPlane();
  await installTestJobs(cp.pool);
  jobs = new JobStore(cp.pool);
}, 120_000);

afterAll(async () => {
  await server?.kill();
  await cp?.pool.query("INSERT INTO test_job_gates (job_id, step) SELECT id, '*' FROM jobs ON CONFLICT DO NOTHING").catch(() => undefined);
  await survivor?.app.close();
  await survivor?.pool.end();
  await cp?.close();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

// A job created as another server's controller would: stored, then signalled (the process hears the NOTIFY).
async function submit(kind: string): Promise<string> {
  const id = randomUUID();
  await jobs.insert({ id, kind, steps: planOf(testJobKinds(cp.pool).find((k) => k.name === kind)!), state: {} });
  await new JobSignals(cp.pool).send({ kind: "job", id, from: "test" });
  return id;
}

test("killed (kill -9) in a step: the next server resumes a re-runnable step and rolls back one that cannot run again", async () => {
  server = await startServerProcess({ databaseUrl: cp.url(), dataDir, tickMs: 200, leaseSeconds: 3, testJobs: true });
  const dead = server.nodeId;
  const resumable = await submit("test.resume");
  const once = await submit("test.once");
  for (const id of [resumable, once]) {
    await waitFor(async () => (await runsOf(cp.pool, id)).some((r) => r.step === "work" && r.action === "run"), "work to run in the process", 30_000);
  }
  await server.kill();
  server = undefined;
  const { rows } = await cp.pool.query("SELECT coalesce(max(seq), 0)::int AS seq FROM test_job_runs");
  const killedAt = rows[0].seq as number;
  // Its leases stay until they lapse: nothing was released.
  for (const id of [resumable, once]) {
    const job = (await jobs.get(id))!;
    expect(job.lease?.owner).toBe(dead);
    expect(job.steps.map((s) => s.status)).toEqual(["Completed", "InProgress", "Pending"]);
  }

  const pool = createPool(cp.url());
  survivor = { pool, app: await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 200, leaseSeconds: 3, jobKinds: testJobKinds(pool), log: () => undefined }) };
  const alive = survivor.app.orchestrator.nodeId;
  const ended = (id: string) =>
    waitFor(async () => !["Pending", "InProgress"].includes((await jobs.get(id))!.status), `job ${id} to end`, 30_000).then(async () => (await jobs.get(id))!);

  // Re-runnable: run again by the survivor (attempt 2), then on to the end.
  await waitFor(async () => (await runsOf(cp.pool, resumable)).some((r) => r.step === "work" && r.attempt === 2), "work to run again", 30_000);
  await openGate(cp.pool, resumable, "work");
  const resumed = await ended(resumable);
  expect(resumed.status).toBe("Completed");
  expect(resumed.steps.map((s) => s.attempts)).toEqual([1, 2, 1]);
  const runs = await runsOf(cp.pool, resumable);
  expect(runs.filter((r) => r.action === "run").map((r) => [r.step, r.attempt, r.node])).toEqual([
    ["prepare", 1, dead],
    ["work", 1, dead],
    ["work", 2, alive],
    ["finish", 1, alive],
  ]);
  // The killed run of work ended with the process: nothing of it was recorded after.
  expect(runs.filter((r) => r.node === dead).every((r) => r.seq <= killedAt)).toBe(true);
  expect(runs.filter((r) => r.node === alive).every((r) => r.seq > killedAt)).toBe(true);

  // Not re-runnable: marked Failed, then rolled back by the survivor, last step first.
  const rolledBack = await ended(once);
  expect(rolledBack).toMatchObject({ status: "RolledBack", rollbackStatus: "Completed" });
  expect(rolledBack.steps.map((s) => s.status)).toEqual(["RolledBack", "RolledBack", "Pending"]);
  expect(rolledBack.steps[1]!.error).toMatch(/interrupted/);
  const onceRuns = await runsOf(cp.pool, once);
  expect(onceRuns.filter((r) => r.action === "run").map((r) => [r.step, r.node])).toEqual([["prepare", dead], ["work", dead]]);
  expect(onceRuns.filter((r) => r.action === "rollback").map((r) => [r.step, r.node])).toEqual([["work", alive], ["prepare", alive]]);
}, 120_000);
