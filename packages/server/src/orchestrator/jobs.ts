// The runner of step-machine jobs (failovers, migrations: job-kind.ts), the
// same for every kind. A job runs on the server that holds its lease. Each
// step's start is recorded before it runs and its outcome before the next
// begins, every record fenced by the lease (store/jobs.ts); so whichever
// server takes the lease next — after a crash, a lost lease, a shutdown —
// knows where the job stands:
//
// - a step recorded as begun but not ended was interrupted: it runs again if
//   it is re-runnable, else it is marked Failed and the job rolls back;
// - a failed step rolls the job back; so does a cancel, accepted while no
//   step that cannot be cancelled has begun;
// - a rollback undoes, in reverse order, every step that began (the failed or
//   interrupted one included), recording each; an interrupted rollback goes
//   on where it was.
//
// A step runs on one server at a time as long as it honours its abort signal:
// the runner aborts it when the job is cancelled, when a renewal of the lease
// fails or has not succeeded for three quarters of the lease, and at
// shutdown (a re-runnable step); and it records nothing once aborted.
import type { JsonObject } from "@bufbuild/protobuf";
import type { JobRow, JobStore, Lease } from "../store/jobs";
import { LeaseLost, StepAborted, type JobChange, type JobKind, type StepContext } from "./job-kind";

export interface JobsDeps {
  jobs: JobStore;
  kinds: readonly JobKind[];
  nodeId: string;
  leaseSeconds: number;
  // Runs `fn` under the job's key (one reconciliation of it at a time).
  serial: <T>(id: string, fn: () => Promise<T>) => Promise<T>;
  log?: (message: string) => void;
}

// A job this server runs.
interface Held {
  id: string;
  kind: JobKind;
  lease: Lease;
  // What runs now: a step, or a step's rollback.
  current?: { abort: AbortController; rerunnable: boolean; cancellable: boolean };
  // Why this server stopped running it before it ended.
  stopped?: StepAborted;
  // A cancel was asked (heard by a signal or a renewal).
  cancel: boolean;
  // Ended here: its lease went with the final record.
  ended: boolean;
  // Aborts it when the lease has not been renewed for too long.
  deadline?: NodeJS.Timeout;
  done: Promise<void>;
}

/** How many unowned jobs one pass takes at most. */
const CLAIM_BATCH = 100;

export class Jobs {
  private readonly kinds: Map<string, JobKind>;
  private readonly held = new Map<string, Held>();
  private closing = false;

  constructor(private readonly deps: JobsDeps) {
    this.kinds = new Map(deps.kinds.map((k) => [k.name, k]));
  }

  /** The kind named `name`, if this server runs it. */
  kind(name: string): JobKind | undefined {
    return this.kinds.get(name);
  }

  /** The jobs this server runs now. */
  get running(): string[] {
    return [...this.held.keys()];
  }

  /**
   * Reconciles one job (under its key): a job this server runs hears of a
   * cancel; one nobody holds is taken and run here.
   */
  async reconcile(id: string): Promise<void> {
    const held = this.held.get(id);
    if (held) {
      if ((await this.deps.jobs.get(id))?.cancelRequestedAt) this.cancelled(held);
      return;
    }
    if (this.closing) return;
    const sent = Date.now();
    const row = await this.deps.jobs.acquire(id, this.deps.nodeId, this.deps.leaseSeconds, [...this.kinds.keys()]);
    if (row) this.drive(row, sent);
  }

  /** The periodic pass: renews the leases of the jobs run here, hears of cancels, and takes jobs nobody holds. */
  async pass(): Promise<void> {
    const held = [...this.held.values()].filter((h) => !h.stopped && !h.ended);
    const sent = Date.now();
    const renewed = new Map((await this.deps.jobs.renew(held.map((h) => ({ id: h.id, epoch: h.lease.epoch })), this.deps.nodeId, this.deps.leaseSeconds)).map((r) => [r.id, r]));
    for (const h of held) {
      const r = renewed.get(h.id);
      if (!r) {
        // Taken over (this server was presumed dead), or ended meanwhile (then nothing runs to stop).
        if (!h.ended) this.stop(h, new StepAborted("lease"));
        continue;
      }
      this.arm(h, sent);
      if (r.cancel) this.cancelled(h);
    }
    if (this.closing) return;
    for (const id of await this.deps.jobs.claimable([...this.kinds.keys()], CLAIM_BATCH)) {
      if (this.closing) return;
      if (!this.held.has(id)) await this.deps.serial(id, () => this.reconcile(id));
    }
  }

  /**
   * Stops taking jobs; aborts re-runnable steps and rollbacks (the next holder
   * runs them again) and lets a step that is not re-runnable finish, records
   * it, and begins no other; releases the leases.
   */
  async shutdown(): Promise<void> {
    this.closing = true;
    for (const h of this.held.values()) if (h.current?.rerunnable) this.stop(h, new StepAborted("shutdown"));
    await Promise.all([...this.held.values()].map((h) => h.done));
  }

  /** As a crash: every step aborted, nothing recorded from now on, no lease released (they lapse). For tests and drills. */
  async halt(): Promise<void> {
    this.closing = true;
    for (const h of this.held.values()) this.stop(h, new StepAborted("halt"));
    await Promise.all([...this.held.values()].map((h) => h.done));
  }

  private drive(row: JobRow, sent: number): void {
    const held: Held = { id: row.id, kind: this.kinds.get(row.kind)!, lease: { owner: row.lease!.owner, epoch: row.lease!.epoch }, cancel: false, ended: false, done: Promise.resolve() };
    this.held.set(row.id, held);
    this.arm(held, sent);
    held.done = this.steps(held, row)
      .catch((e: unknown) => {
        if (!(e instanceof StepAborted || e instanceof LeaseLost)) this.deps.log?.(`job ${row.id} (${row.kind}): ${(e as Error).message}`);
      })
      .then(async () => {
        // Another server may take it at once (not after a halt: as a crash, nothing is released).
        if (!held.ended && held.stopped?.why !== "halt") await this.deps.jobs.release(held.id, held.lease).catch(() => undefined);
      })
      .finally(() => {
        clearTimeout(held.deadline);
        this.held.delete(row.id);
      });
  }

  private async steps(h: Held, row: JobRow): Promise<void> {
    const { kind } = h;
    const planned = row.steps.map((s) => s.step).join(", ");
    const defined = kind.steps.map((s) => s.name).join(", ");
    if (planned !== defined) {
      await this.end(h, () => this.deps.jobs.end(h.id, h.lease, "Failed", null, `the job's steps (${planned}) are not those of ${kind.name} on this server (${defined})`));
      return;
    }
    for (;;) {
      // Shutting down: no step begins; the lease goes to the next holder.
      if (this.closing) return;
      if (row.rollbackStatus === "InProgress") return this.rollBack(h, row);
      if (row.cancelRequestedAt || h.cancel) {
        row = this.told(h, await this.write(h, () => this.deps.jobs.startRollback(h.id, h.lease, "cancelled on request")), { what: "rollback" });
        continue;
      }
      const i = row.steps.findIndex((s) => s.status !== "Completed" && s.status !== "Skipped");
      if (i < 0) return this.end(h, () => this.deps.jobs.end(h.id, h.lease, "Completed", null));
      const record = row.steps[i]!;
      const step = kind.steps[i]!;
      if (record.status === "Failed") {
        row = this.told(h, await this.write(h, () => this.deps.jobs.startRollback(h.id, h.lease, `${step.name}: ${record.error ?? "failed"}`)), { what: "rollback" });
        continue;
      }
      if (record.status === "InProgress" && !step.rerunnable) {
        const why = `interrupted (the server running it stopped or lost the job), and it cannot safely run again`;
        row = this.told(h, await this.write(h, () => this.deps.jobs.finish(h.id, h.lease, i, "Failed", why)), { what: "step", index: i, phase: "end" });
        continue;
      }
      const begun = await this.write(h, () => this.deps.jobs.begin(h.id, h.lease, i, step.cancellable ?? true), true);
      if (begun) {
        this.told(h, begun, { what: "step", index: i, phase: "begin" });
        row = await this.runStep(h, begun, i);
        continue;
      }
      // Refused: a cancel came first (the job rolls back), or the job is another's now (reread stops).
      row = await this.reread(h);
      if (!row.cancelRequestedAt && row.rollbackStatus === null) throw new Error(`the start of ${step.name} could not be recorded`);
    }
  }

  // Runs step `i` (its start is recorded) and records its outcome; the job as the record leaves it.
  private async runStep(h: Held, row: JobRow, i: number): Promise<JobRow> {
    const step = h.kind.steps[i]!;
    const abort = new AbortController();
    h.current = { abort, rerunnable: step.rerunnable, cancellable: step.cancellable ?? true };
    // A shutdown that came while the start was recorded: a re-runnable step is left to the next holder.
    if (this.closing && step.rerunnable) this.stop(h, new StepAborted("shutdown"));
    if (h.stopped) throw h.stopped;
    let outcome: void | { skipped: string } = undefined;
    let error: unknown;
    try {
      outcome = await step.run(this.context(h, row, i, abort.signal));
    } catch (e) {
      error = e;
    } finally {
      h.current = undefined;
    }
    // Aborted for this server's reasons: nothing is recorded (another run, here or elsewhere, follows).
    if (h.stopped) throw h.stopped;
    const ended: JobChange = { what: "step", index: i, phase: "end" };
    if (error !== undefined) {
      const cancelled = abort.signal.reason instanceof StepAborted && abort.signal.reason.why === "cancel";
      const why = cancelled ? "cancelled while it ran" : (error as Error)?.message ?? String(error);
      return this.told(h, await this.write(h, () => this.deps.jobs.finish(h.id, h.lease, i, "Failed", why)), ended);
    }
    if (outcome && "skipped" in outcome) {
      await this.write(h, () => this.deps.jobs.report(h.id, h.lease, i, { reason: outcome.skipped }));
      return this.told(h, await this.write(h, () => this.deps.jobs.finish(h.id, h.lease, i, "Skipped")), ended);
    }
    return this.told(h, await this.write(h, () => this.deps.jobs.finish(h.id, h.lease, i, "Completed")), ended);
  }

  // Undoes, last first, every step that began and can be undone, then ends the job.
  private async rollBack(h: Held, row: JobRow): Promise<void> {
    for (let i = row.steps.length - 1; i >= 0; i--) {
      if (this.closing) return;
      const record = row.steps[i]!;
      const step = h.kind.steps[i]!;
      if (!step.rollback || !["InProgress", "Completed", "Failed"].includes(record.status)) continue;
      row = this.told(h, await this.write(h, () => this.deps.jobs.rollbackStep(h.id, h.lease, i, "begin")), { what: "rollback-step", index: i, phase: "begin" });
      const abort = new AbortController();
      h.current = { abort, rerunnable: true, cancellable: false };
      let error: unknown;
      try {
        await step.rollback(this.context(h, row, i, abort.signal));
      } catch (e) {
        error = e;
      } finally {
        h.current = undefined;
      }
      if (h.stopped) throw h.stopped;
      if (error !== undefined) {
        // What is left needs a person: the job says what failed, and stays as it is.
        const why = `${row.error ?? "failed"}; the rollback of ${step.name} failed: ${(error as Error)?.message ?? String(error)}`;
        return this.end(h, () => this.deps.jobs.end(h.id, h.lease, "Failed", "Failed", why));
      }
      row = this.told(h, await this.write(h, () => this.deps.jobs.rollbackStep(h.id, h.lease, i, "done")), { what: "rollback-step", index: i, phase: "end" });
    }
    const status = row.cancelRequestedAt ? "Cancelled" : "RolledBack";
    await this.end(h, () => this.deps.jobs.end(h.id, h.lease, status, "Completed"));
  }

  private context(h: Held, row: JobRow, i: number, signal: AbortSignal): StepContext {
    let state = row.state;
    // Saves one at a time, in the order asked: parts of a step that run side by side may each save, and the state
    // kept here is then always the one the last write returned.
    let saving: Promise<unknown> = Promise.resolve();
    return {
      jobId: h.id,
      kind: h.kind.name,
      step: h.kind.steps[i]!.name,
      attempt: row.steps[i]!.attempts,
      get state() {
        return state;
      },
      save: (patch: JsonObject) => {
        const saved = saving.then(async () => {
          state = (await this.write(h, () => this.deps.jobs.save(h.id, h.lease, patch))).state;
        });
        saving = saved.catch(() => undefined);
        return saved;
      },
      report: async (details: JsonObject) => {
        await this.write(h, () => this.deps.jobs.report(h.id, h.lease, i, details));
      },
      signal,
      lease: h.lease,
    };
  }

  // A fenced write of the job: refused once this server stopped running it, or
  // when the store says the lease is another's (then it stops). `refusable`:
  // the store may refuse for another reason (undefined, to look into).
  private async write(h: Held, op: () => Promise<JobRow | undefined>, refusable?: false): Promise<JobRow>;
  private async write(h: Held, op: () => Promise<JobRow | undefined>, refusable: true): Promise<JobRow | undefined>;
  private async write(h: Held, op: () => Promise<JobRow | undefined>, refusable = false): Promise<JobRow | undefined> {
    if (h.stopped) throw h.stopped;
    const row = await op();
    if (row || refusable) return row;
    this.stop(h, new StepAborted("lease"));
    throw new LeaseLost(h.id);
  }

  private async end(h: Held, op: () => Promise<JobRow | undefined>): Promise<void> {
    const row = await this.write(h, op);
    h.ended = true;
    this.told(h, row, { what: "end" });
  }

  // Tells the kind of a record just made (JobKind.observe); returns the row.
  private told(h: Held, row: JobRow, change: JobChange): JobRow {
    try {
      h.kind.observe?.(row, change);
    } catch (e) {
      this.deps.log?.(`job ${h.id} (${h.kind.name}): ${(e as Error).message}`);
    }
    return row;
  }

  // The job as it is now, if this server still holds it.
  private async reread(h: Held): Promise<JobRow> {
    const row = await this.deps.jobs.get(h.id);
    if (row?.lease?.owner === h.lease.owner && row.lease.epoch === h.lease.epoch) return row;
    this.stop(h, new StepAborted("lease"));
    throw new LeaseLost(h.id);
  }

  private stop(h: Held, why: StepAborted): void {
    if (h.stopped) return;
    h.stopped = why;
    h.current?.abort.abort(why);
  }

  private cancelled(h: Held): void {
    h.cancel = true;
    if (h.current?.cancellable) h.current.abort.abort(new StepAborted("cancel"));
  }

  // The step is aborted when the lease has not been confirmed for three quarters of its length
  // (from when the last successful renewal was sent): before another server can take it.
  private arm(h: Held, sent: number): void {
    clearTimeout(h.deadline);
    const ms = sent + this.deps.leaseSeconds * 750 - Date.now();
    h.deadline = setTimeout(() => this.stop(h, new StepAborted("lease")), Math.max(0, ms));
    h.deadline.unref();
  }
}
