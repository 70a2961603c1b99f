// Test support: job kinds whose steps record what ran — which step, what it
// did (run, end, aborted, failed, rollback), on which server, in which
// attempt and under which lease epoch — in the control plane
// (test_job_runs, numbered in the order the records were made), wait at gates
// the test opens (test_job_gates), and fail when the job's state asks them
// to. For the runner's tests of resume, rollback, cancel and one step at a
// time. Not for production use.
import type { JsonObject } from "@bufbuild/protobuf";
import type pg from "pg";
import type { JobKind, JobStep, StepContext } from "../orchestrator/job-kind";

/** Creates the tables the test kinds write (once, before any server runs them). */
export async function installTestJobs(db: pg.Pool): Promise<void> {
  await db.query(`
    CREATE TABLE IF NOT EXISTS test_job_runs (
      seq bigserial PRIMARY KEY,
      job_id uuid NOT NULL,
      step text NOT NULL,
      action text NOT NULL,
      node text NOT NULL,
      attempt integer NOT NULL,
      epoch bigint NOT NULL,
      note text NOT NULL DEFAULT ''
    );
    -- A gated step goes on once its gate, or the job's '*', is open.
    CREATE TABLE IF NOT EXISTS test_job_gates (job_id uuid NOT NULL, step text NOT NULL, PRIMARY KEY (job_id, step));`);
}

interface StepSpec {
  name: string;
  rerunnable: boolean;
  cancellable?: boolean;
  /** Waits for its gate (honouring its abort signal). */
  gated?: boolean;
  /** Saves this many outputs side by side (as a cutover's parts in its window do) besides its own. */
  sideBySide?: number;
}

/**
 * The test kinds: "test.quick" (three re-runnable steps that pause a moment),
 * "test.resume" (a gated re-runnable step in the middle), "test.once" (the
 * same, not re-runnable), "test.cancel" (a gated cancellable copy, then a gated
 * cutover that cannot be cancelled nor run again), "test.saves" (one step
 * that saves 20 outputs side by side, and says in its end's note which
 * outputs its state then holds). Every step can be undone.
 * A job's state may say `fail: [steps]` (the step fails) and
 * `failRollback: [steps]` (its rollback fails).
 */
export function testJobKinds(db: pg.Pool): JobKind[] {
  const kind = (name: string, steps: StepSpec[]): JobKind => ({ name, steps: steps.map((s) => testStep(db, s)) });
  return [
    kind("test.quick", [
      { name: "one", rerunnable: true },
      { name: "two", rerunnable: true },
      { name: "three", rerunnable: true },
    ]),
    kind("test.resume", [
      { name: "prepare", rerunnable: true },
      { name: "work", rerunnable: true, gated: true },
      { name: "finish", rerunnable: true },
    ]),
    kind("test.once", [
      { name: "prepare", rerunnable: true },
      { name: "work", rerunnable: false, gated: true },
      { name: "finish", rerunnable: true },
    ]),
    kind("test.cancel", [
      { name: "copy", rerunnable: true, cancellable: true, gated: true },
      { name: "cutover", rerunnable: false, cancellable: false, gated: true },
      { name: "cleanup", rerunnable: true },
    ]),
    kind("test.saves", [{ name: "outputs", rerunnable: true, sideBySide: 20 }]),
  ];
}

function testStep(db: pg.Pool, spec: StepSpec): JobStep {
  const record = (ctx: StepContext, action: string, note = "") =>
    db.query("INSERT INTO test_job_runs (job_id, step, action, node, attempt, epoch, note) VALUES ($1, $2, $3, $4, $5, $6, $7)", [
      ctx.jobId, spec.name, action, ctx.lease.owner, ctx.attempt, ctx.lease.epoch, note,
    ]);
  const asked = (ctx: StepContext, list: string) => ((ctx.state[list] as string[] | undefined) ?? []).includes(spec.name);
  return {
    name: spec.name,
    rerunnable: spec.rerunnable,
    ...(spec.cancellable !== undefined ? { cancellable: spec.cancellable } : {}),
    async run(ctx) {
      await record(ctx, "run");
      try {
        if (asked(ctx, "fail")) throw new Error(`${spec.name} failed as asked`);
        // A moment in which another server running it would show.
        if (spec.gated) await gate(db, ctx.jobId, spec.name, ctx.signal);
        else await pause(30, ctx.signal);
      } catch (e) {
        await record(ctx, ctx.signal.aborted ? "aborted" : "failed", ctx.signal.aborted ? (ctx.signal.reason as { why?: string }).why ?? "" : (e as Error).message);
        throw e;
      }
      // An output the next steps, and a server resuming the job, find in its state.
      await ctx.save({ [`${spec.name}_by`]: ctx.lease.owner } as JsonObject);
      await Promise.all(Array.from({ length: spec.sideBySide ?? 0 }, (_, i) => ctx.save({ [`${spec.name}_${i}`]: i } as JsonObject)));
      await ctx.report({ attempt: ctx.attempt });
      await record(ctx, "end", spec.sideBySide ? Object.keys(ctx.state).sort().join(",") : "");
    },
    async rollback(ctx) {
      await record(ctx, "rollback");
      if (asked(ctx, "failRollback")) throw new Error(`the rollback of ${spec.name} failed as asked`);
    },
  };
}

async function gate(db: pg.Pool, jobId: string, step: string, signal: AbortSignal): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    const { rowCount } = await db.query("SELECT 1 FROM test_job_gates WHERE job_id = $1 AND step IN ($2, '*')", [jobId, step]);
    if (rowCount) return;
    await pause(50, signal);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
  });
}

/** Lets a gated step of the job go on ("*": every one). */
export async function openGate(db: pg.Pool, jobId: string, step: string): Promise<void> {
  await db.query("INSERT INTO test_job_gates (job_id, step) VALUES ($1, $2) ON CONFLICT DO NOTHING", [jobId, step]);
}

export interface Run {
  seq: number;
  step: string;
  action: string;
  node: string;
  attempt: number;
  epoch: number;
  note: string;
}

/** What the job's steps recorded, in the order they recorded it. */
export async function runsOf(db: pg.Pool, jobId: string): Promise<Run[]> {
  const { rows } = await db.query("SELECT seq::int, step, action, node, attempt, epoch::int, note FROM test_job_runs WHERE job_id = $1 ORDER BY seq", [jobId]);
  return rows as Run[];
}
