// Jobs as the control plane keeps them (migration 12): a kind's steps in
// order, each step's record, the job's state, and its lease. Every write of a
// running job is fenced by the lease (owner and epoch): a server that lost
// the lease — another took it over — can no longer record anything for it.
import type { JsonObject } from "@bufbuild/protobuf";
import type pg from "pg";

export type JobStatus = "Pending" | "InProgress" | "Completed" | "Failed" | "RolledBack" | "Cancelled";
export type StepStatus = "Pending" | "InProgress" | "Completed" | "Failed" | "Skipped" | "RolledBack";
export type RollbackStatus = "InProgress" | "Completed" | "Failed";

/** Jobs a server may still run. */
export const OPEN: JobStatus[] = ["Pending", "InProgress"];

/** A step as a job is created with it, from its kind's definition. */
export interface StepPlan {
  step: string;
  rerunnable: boolean;
  cancellable: boolean;
}

/** A step and its record. Times are the database's. */
export interface StepRecord extends StepPlan {
  status: StepStatus;
  /** How many times it began (a run interrupted and run again counts twice). */
  attempts: number;
  startedAt: Date | null;
  completedAt: Date | null;
  durationMs: number | null;
  error: string | null;
  /** Figures the step reported of itself (progress, sizes, a skip's reason). */
  details: JsonObject;
  rollbackStartedAt: Date | null;
  rolledBackAt: Date | null;
}

/** Who holds a job: the lease's owner and its epoch (it grows with every new holder). */
export interface Lease {
  owner: string;
  epoch: number;
}

export interface JobRow {
  id: string;
  kind: string;
  status: JobStatus;
  steps: StepRecord[];
  state: JsonObject;
  error: string | null;
  cancellable: boolean;
  cancelRequestedAt: Date | null;
  rollbackStatus: RollbackStatus | null;
  lease: (Lease & { expiresAt: Date }) | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date;
}

/** What a cancel request found: accepted (now or before), refused (a step that cannot be cancelled began), too late, or no such job. */
export type CancelOutcome = "cancelling" | "refused" | "ended" | "not_found";

const date = (v: unknown) => (v == null ? null : new Date(v as string | Date));

function stepOf(s: Record<string, unknown>): StepRecord {
  return {
    step: s.step as string,
    rerunnable: s.rerunnable === true,
    cancellable: s.cancellable !== false,
    status: s.status as StepStatus,
    attempts: Number(s.attempts ?? 0),
    startedAt: date(s.started_at),
    completedAt: date(s.completed_at),
    durationMs: s.duration_ms == null ? null : Number(s.duration_ms),
    error: (s.error as string | null) ?? null,
    details: (s.details as JsonObject | undefined) ?? {},
    rollbackStartedAt: date(s.rollback_started_at),
    rolledBackAt: date(s.rolled_back_at),
  };
}

/** A jobs row as pg reads it, or as to_jsonb() writes it (a join's `job` column: times as text). */
export function jobOf(r: Record<string, unknown>): JobRow {
  return {
    id: r.id as string,
    kind: r.kind as string,
    status: r.status as JobStatus,
    steps: (r.steps as Record<string, unknown>[]).map(stepOf),
    state: r.state as JsonObject,
    error: r.error as string | null,
    cancellable: r.cancellable as boolean,
    cancelRequestedAt: date(r.cancel_requested_at),
    rollbackStatus: r.rollback_status as RollbackStatus | null,
    lease: r.lease_owner ? { owner: r.lease_owner as string, epoch: Number(r.lease_epoch), expiresAt: date(r.lease_expires_at)! } : null,
    createdAt: date(r.created_at)!,
    startedAt: date(r.started_at),
    completedAt: date(r.completed_at),
    updatedAt: date(r.updated_at)!,
  };
}

// The writes of a running job: by the lease's holder only, while the job is open.
const HELD = "id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND status IN ('Pending', 'InProgress')";
const ms = (from: string) => `round(extract(epoch FROM now() - (${from})::timestamptz) * 1000)`;

export class JobStore {
  constructor(private readonly db: pg.Pool) {}

  /** A new job, Pending, its steps as planned; on `client` when given (the caller's transaction). */
  async insert(job: { id: string; kind: string; steps: StepPlan[]; state: JsonObject }, client: pg.ClientBase | pg.Pool = this.db): Promise<JobRow> {
    const steps = job.steps.map((s) => ({
      step: s.step, rerunnable: s.rerunnable, cancellable: s.cancellable, status: "Pending", attempts: 0,
      started_at: null, completed_at: null, duration_ms: null, error: null, details: {}, rollback_started_at: null, rolled_back_at: null,
    }));
    const { rows } = await client.query("INSERT INTO jobs (id, kind, steps, state) VALUES ($1, $2, $3, $4) RETURNING *", [
      job.id, job.kind, JSON.stringify(steps), JSON.stringify(job.state),
    ]);
    return jobOf(rows[0]);
  }

  async get(id: string): Promise<JobRow | undefined> {
    const { rows } = await this.db.query("SELECT * FROM jobs WHERE id = $1", [id]);
    return rows[0] ? jobOf(rows[0]) : undefined;
  }

  /**
   * Takes the lease of an open job of one of `kinds` for `seconds` when it is
   * free, expired, or already `owner`'s; a new holder moves the epoch. The
   * job as it is now, or undefined when another holds it (or it has ended).
   */
  async acquire(id: string, owner: string, seconds: number, kinds: string[]): Promise<JobRow | undefined> {
    const { rows } = await this.db.query(
      `UPDATE jobs SET lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3),
              lease_epoch = lease_epoch + CASE WHEN lease_owner IS NOT DISTINCT FROM $2 THEN 0 ELSE 1 END
        WHERE id = $1 AND kind = ANY($4) AND status IN ('Pending', 'InProgress')
          AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_owner = $2)
        RETURNING *`,
      [id, owner, seconds, kinds],
    );
    return rows[0] ? jobOf(rows[0]) : undefined;
  }

  /** Extends the leases `owner` holds (at these epochs) by `seconds`; the ones renewed, and whether a cancel was asked of each. */
  async renew(held: { id: string; epoch: number }[], owner: string, seconds: number): Promise<{ id: string; cancel: boolean }[]> {
    if (held.length === 0) return [];
    const { rows } = await this.db.query(
      `UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3)
         FROM unnest($1::uuid[], $4::bigint[]) AS h(id, epoch)
        WHERE jobs.id = h.id AND jobs.lease_epoch = h.epoch AND jobs.lease_owner = $2 AND jobs.status IN ('Pending', 'InProgress')
        RETURNING jobs.id, jobs.cancel_requested_at IS NOT NULL AS cancel`,
      [held.map((h) => h.id), owner, seconds, held.map((h) => h.epoch)],
    );
    return rows.map((r) => ({ id: r.id, cancel: r.cancel }));
  }

  /** Lets the lease go (another server may take the job at once); a lease another holds stays. */
  async release(id: string, lease: Lease): Promise<void> {
    await this.db.query("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3", [
      id, lease.owner, lease.epoch,
    ]);
  }

  /** Open jobs of `kinds` that nobody holds (never taken, released, or their holder's lease expired), oldest first. */
  async claimable(kinds: string[], limit: number): Promise<string[]> {
    if (kinds.length === 0) return [];
    const { rows } = await this.db.query(
      `SELECT id FROM jobs WHERE status IN ('Pending', 'InProgress') AND kind = ANY($1)
          AND (lease_owner IS NULL OR lease_expires_at < now()) ORDER BY created_at LIMIT $2`,
      [kinds, limit],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Records that step `index` begins (another attempt of it, when it began
   * before). Refused — undefined — when the lease is not the holder's any
   * more, a cancel was asked (the job rolls back instead), or a rollback
   * began. A step that cannot be cancelled makes the job uncancellable from
   * here on, in the same statement that a cancel request waits for.
   */
  async begin(id: string, lease: Lease, index: number, cancellable: boolean): Promise<JobRow | undefined> {
    return this.update(
      `status = 'InProgress', started_at = coalesce(started_at, now()), cancellable = cancellable AND $5,
       steps = jobs_step_set(steps, $4::int, jsonb_build_object('status', 'InProgress', 'started_at', now(), 'completed_at', NULL,
         'duration_ms', NULL, 'error', NULL, 'attempts', coalesce((steps -> $4::int ->> 'attempts')::int, 0) + 1))`,
      "AND cancel_requested_at IS NULL AND rollback_status IS NULL",
      [id, lease.owner, lease.epoch, index, cancellable],
    );
  }

  /** Records how step `index` ended: when, how long it took since it began, and why it failed. */
  async finish(id: string, lease: Lease, index: number, status: "Completed" | "Skipped" | "Failed", error: string | null = null): Promise<JobRow | undefined> {
    return this.update(
      `steps = jobs_step_set(steps, $4::int, jsonb_build_object('status', $5::text, 'completed_at', now(),
         'duration_ms', ${ms("steps -> $4::int ->> 'started_at'")}, 'error', $6::text))`,
      "",
      [id, lease.owner, lease.epoch, index, status, error],
    );
  }

  /** Merges `patch` into the job's state. */
  async save(id: string, lease: Lease, patch: JsonObject): Promise<JobRow | undefined> {
    return this.update("state = state || $4::jsonb", "", [id, lease.owner, lease.epoch, JSON.stringify(patch)]);
  }

  /** Merges `details` into step `index`'s details. */
  async report(id: string, lease: Lease, index: number, details: JsonObject): Promise<JobRow | undefined> {
    return this.update(
      "steps = jobs_step_set(steps, $4::int, jsonb_build_object('details', coalesce(steps -> $4::int -> 'details', '{}') || $5::jsonb))",
      "",
      [id, lease.owner, lease.epoch, index, JSON.stringify(details)],
    );
  }

  /** The job rolls back from here (`error`: why, kept when one was recorded already). */
  async startRollback(id: string, lease: Lease, error: string): Promise<JobRow | undefined> {
    return this.update(
      "status = 'InProgress', started_at = coalesce(started_at, now()), rollback_status = 'InProgress', error = coalesce(error, $4)",
      "",
      [id, lease.owner, lease.epoch, error],
    );
  }

  /** Records that step `index`'s rollback begins ("begin") or is done ("done": the step is RolledBack). */
  async rollbackStep(id: string, lease: Lease, index: number, phase: "begin" | "done"): Promise<JobRow | undefined> {
    const patch = phase === "begin" ? "jsonb_build_object('rollback_started_at', now())" : "jsonb_build_object('status', 'RolledBack', 'rolled_back_at', now())";
    return this.update(`steps = jobs_step_set(steps, $4::int, ${patch})`, "", [id, lease.owner, lease.epoch, index]);
  }

  /** Ends the job (Completed, Failed, RolledBack, Cancelled) and lets its lease go. */
  async end(id: string, lease: Lease, status: Exclude<JobStatus, "Pending" | "InProgress">, rollbackStatus: RollbackStatus | null, error: string | null = null): Promise<JobRow | undefined> {
    return this.update(
      `status = $4, rollback_status = coalesce($5, rollback_status), error = coalesce($6, error), completed_at = now(),
       started_at = coalesce(started_at, now()), lease_owner = NULL, lease_expires_at = NULL`,
      "",
      [id, lease.owner, lease.epoch, status, rollbackStatus, error],
    );
  }

  /**
   * Asks the job to cancel: accepted while no step that cannot be cancelled
   * has begun (checked in the statement that a step's beginning waits for, so
   * the two never cross), and not while it rolls back after a failure. The
   * holder rolls it back.
   */
  async requestCancel(id: string): Promise<CancelOutcome> {
    const { rowCount } = await this.db.query(
      `UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
        WHERE id = $1 AND status IN ('Pending', 'InProgress') AND cancellable AND (rollback_status IS NULL OR cancel_requested_at IS NOT NULL)`,
      [id],
    );
    if (rowCount === 1) return "cancelling";
    const job = await this.get(id);
    if (!job) return "not_found";
    return OPEN.includes(job.status) && job.rollbackStatus === null ? "refused" : "ended";
  }

  private async update(set: string, where: string, params: unknown[]): Promise<JobRow | undefined> {
    const { rows } = await this.db.query(`UPDATE jobs SET ${set}, updated_at = now() WHERE ${HELD} ${where} RETURNING *`, params);
    return rows[0] ? jobOf(rows[0]) : undefined;
  }
}
