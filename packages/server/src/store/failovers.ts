// Failovers as the control plane keeps them (migration 12, spec §2.3): a job
// (status, steps, timestamps, lease: store/jobs.ts) and what only a failover
// has — its replication, trigger, reason, options, the primaries before and
// after, the measured downtime.
import { fromJson, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ConnectionInfoSchema, type ConnectionInfo } from "@heliosdb/replication-proto";
import type pg from "pg";
import { jobOf, JobStore, type JobRow, type JobStatus, type Lease, type StepPlan } from "./jobs";

/** The job kind whose jobs are failovers. */
export const FAILOVER_KIND = "failover";

export type FailoverTrigger = "Manual" | "Automatic";

export interface FailoverRow {
  id: string;
  replicationId: string;
  tenantId: string;
  trigger: FailoverTrigger;
  reason: string;
  force: boolean;
  updateRouting: boolean;
  oldPrimary: ConnectionInfo | null;
  newPrimary: ConnectionInfo | null;
  estimatedDurationSeconds: number | null;
  downtimeMs: number | null;
  /** Its status, steps, timestamps, error and rollback. */
  job: JobRow;
  createdAt: Date;
}

export interface FailoverFilter {
  replicationId?: string;
  tenantId?: string;
  status?: JobStatus;
  /** Any of these statuses (with `status`, both must hold). */
  statuses?: JobStatus[];
}

const info = (v: unknown) => (v == null ? null : fromJson(ConnectionInfoSchema, v as JsonValue));
const infoJson = (v: ConnectionInfo | null | undefined) => (v ? JSON.stringify(toJson(ConnectionInfoSchema, v, { alwaysEmitImplicit: true })) : null);

function rowOf(r: Record<string, unknown>): FailoverRow {
  return {
    id: r.id as string,
    replicationId: r.replication_id as string,
    tenantId: r.tenant_id as string,
    trigger: r.trigger as FailoverTrigger,
    reason: r.reason as string,
    force: r.force as boolean,
    updateRouting: r.update_routing as boolean,
    oldPrimary: info(r.old_primary),
    newPrimary: info(r.new_primary),
    estimatedDurationSeconds: r.estimated_duration_seconds as number | null,
    downtimeMs: r.downtime_ms == null ? null : Number(r.downtime_ms),
    job: jobOf(r.job as Record<string, unknown>),
    createdAt: r.created_at as Date,
  };
}

const SELECT = "SELECT f.*, to_jsonb(j) AS job FROM failovers f JOIN jobs j ON j.id = f.id";

export class FailoverStore {
  private readonly jobs: JobStore;

  constructor(private readonly db: pg.Pool) {
    this.jobs = new JobStore(db);
  }

  /**
   * A new failover and its job (Pending, `steps` as its kind plans them), in
   * one transaction; false when the replication has a failover that has not
   * ended (one at a time).
   */
  async insert(f: Omit<FailoverRow, "job" | "createdAt" | "downtimeMs"> & { steps: StepPlan[]; state: JsonObject }): Promise<FailoverRow | false> {
    const client = await this.db.connect();
    try {
      await client.query("BEGIN");
      // Two requests at once for one replication: the second waits here, then sees the first.
      await client.query("SELECT pg_advisory_xact_lock(hashtext('failover:' || $1))", [f.replicationId]);
      const { rowCount } = await client.query(
        "SELECT 1 FROM failovers f JOIN jobs j ON j.id = f.id WHERE f.replication_id = $1 AND j.status IN ('Pending', 'InProgress')",
        [f.replicationId],
      );
      if (rowCount) {
        await client.query("ROLLBACK");
        return false;
      }
      await this.jobs.insert({ id: f.id, kind: FAILOVER_KIND, steps: f.steps, state: f.state }, client);
      await client.query(
        `INSERT INTO failovers (id, replication_id, tenant_id, trigger, reason, force, update_routing, old_primary, new_primary, estimated_duration_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [f.id, f.replicationId, f.tenantId, f.trigger, f.reason, f.force, f.updateRouting, infoJson(f.oldPrimary), infoJson(f.newPrimary), f.estimatedDurationSeconds],
      );
      await client.query("COMMIT");
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
    return (await this.get(f.id))!;
  }

  async get(id: string): Promise<FailoverRow | undefined> {
    const { rows } = await this.db.query(`${SELECT} WHERE f.id = $1`, [id]);
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /** The replication's failover that has not ended, if any. */
  async active(replicationId: string): Promise<FailoverRow | undefined> {
    const { rows } = await this.db.query(`${SELECT} WHERE f.replication_id = $1 AND j.status IN ('Pending', 'InProgress')`, [replicationId]);
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /** A page of failovers, newest first, and how many match. */
  async list(filter: FailoverFilter, offset: number, limit: number): Promise<[FailoverRow[], number]> {
    const where = `($1::uuid IS NULL OR f.replication_id = $1) AND ($2::text IS NULL OR f.tenant_id = $2) AND ($3::text IS NULL OR j.status = $3)
                   AND ($4::text[] IS NULL OR j.status = ANY($4))`;
    const params = [filter.replicationId ?? null, filter.tenantId ?? null, filter.status ?? null, filter.statuses ?? null];
    const [page, total] = await Promise.all([
      this.db.query(`${SELECT} WHERE ${where} ORDER BY f.created_at DESC, f.id OFFSET $5 LIMIT $6`, [...params, offset, limit]),
      this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM failovers f JOIN jobs j ON j.id = f.id WHERE ${where}`, params),
    ]);
    return [page.rows.map(rowOf), total.rows[0]!.n];
  }

  /** What a step measured or decided (by the job's lease holder only); false when the lease is not `lease`. */
  async record(id: string, lease: Lease, fields: { downtimeMs?: number; oldPrimary?: ConnectionInfo; newPrimary?: ConnectionInfo }): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE failovers SET downtime_ms = coalesce($4, downtime_ms), old_primary = coalesce($5, old_primary), new_primary = coalesce($6, new_primary)
        WHERE id = $1 AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = $1 AND lease_owner = $2 AND lease_epoch = $3)`,
      [id, lease.owner, lease.epoch, fields.downtimeMs ?? null, infoJson(fields.oldPrimary), infoJson(fields.newPrimary)],
    );
    return rowCount === 1;
  }
}
