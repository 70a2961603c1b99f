// What a kind of job is (a failover, a migration): an ordered list of steps,
// each with what it does and how it is undone. The runner (jobs.ts) knows
// nothing else of a kind: it records each step's start before running it and
// its outcome before the next, resumes an interrupted job at its recorded
// step, and rolls it back when resuming is not safe, a step failed, or it is
// cancelled.
import type { JsonObject } from "@bufbuild/protobuf";
import type { JobRow, Lease, StepPlan } from "../store/jobs";

export interface JobKind<S extends JsonObject = JsonObject> {
  /** The kind's name, stored with each job ("failover", "migration"). */
  readonly name: string;
  readonly steps: readonly JobStep<S>[];
  /**
   * Hears each record the runner has just made of a job, in order, on the
   * server that made it, with the job as the record left it (events of each
   * step, for instance). Not awaited; it must not throw.
   */
  observe?(row: JobRow, change: JobChange): void;
}

/** A record the runner made: a step began or ended, a step's rollback began or ended, the job began to roll back, the job ended. */
export type JobChange =
  | { what: "step" | "rollback-step"; index: number; phase: "begin" | "end" }
  | { what: "rollback" | "end" };

export interface JobStep<S extends JsonObject = JsonObject> {
  /** The step's name, in the spec's words (ValidateReplicaHealth, BulkCopy). */
  readonly name: string;
  /**
   * Whether the step may run again after a run that was interrupted — its
   * server died, lost the lease or shut down — because running it twice does
   * no harm (it is idempotent, or finds what an earlier run did). A job
   * interrupted in a step that is not re-runnable is rolled back.
   */
  readonly rerunnable: boolean;
  /**
   * Whether the job may still be cancelled while this step runs (default
   * true). Once a step that may not has begun, a cancel is refused for the
   * rest of the job.
   */
  readonly cancellable?: boolean;
  /** Does the step. Rejects when it failed (the job rolls back); `skipped` records it as Skipped, with the reason. */
  run(ctx: StepContext<S>): Promise<void | { skipped: string }>;
  /**
   * Undoes what `run` did, also a run that failed or was interrupted part way
   * (it finds what is there to undo). It may be run again itself after an
   * interruption. Without it the step has nothing to undo.
   */
  rollback?(ctx: StepContext<S>): Promise<void>;
}

export interface StepContext<S extends JsonObject = JsonObject> {
  readonly jobId: string;
  readonly kind: string;
  readonly step: string;
  /** 1 on the step's first run, 2 when it runs again after an interruption, and so on. */
  readonly attempt: number;
  /** The job's persisted state: its input, and what earlier steps (and earlier runs of this one) saved. */
  readonly state: Readonly<S>;
  /**
   * Persists `patch` into the job's state (merged at the top level) before it
   * resolves: a final LSN, measured figures. Rejects once this server no
   * longer runs the job (LeaseLost, or the StepAborted of `signal`).
   */
  save(patch: Partial<S>): Promise<void>;
  /** Merges figures into this step's record (`details`): progress, sizes. Rejects as `save` does. */
  report(details: JsonObject): Promise<void>;
  /**
   * Aborted when the step must stop now: the job is cancelled (a cancellable
   * step), this server may lose the lease, or it shuts down (a re-runnable
   * step; another server runs it again). `signal.reason` is a StepAborted
   * saying which. A step must honour it: the runner waits for it to end
   * before another server can be sure it does not run.
   */
  readonly signal: AbortSignal;
  /** The lease the step runs under, for writes it fences elsewhere (the epoch grows with every new holder). */
  readonly lease: Lease;
}

/** Why a step was aborted (its signal's reason). */
export class StepAborted extends Error {
  constructor(readonly why: "cancel" | "lease" | "shutdown" | "halt") {
    super(
      why === "cancel"
        ? "the job was cancelled"
        : why === "lease"
          ? "this server may no longer hold the job's lease"
          : why === "shutdown"
            ? "the server is shutting down"
            : "the server halted",
    );
  }
}

/** A write of a job refused: another server holds its lease now. */
export class LeaseLost extends Error {
  constructor(jobId: string) {
    super(`job ${jobId}: this server no longer holds its lease`);
  }
}

/** The steps a new job of `kind` is created with. */
export function planOf(kind: JobKind): StepPlan[] {
  return kind.steps.map((s) => ({ step: s.name, rerunnable: s.rerunnable, cancellable: s.cancellable ?? true }));
}
