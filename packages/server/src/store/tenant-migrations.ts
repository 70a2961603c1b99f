// Live tenant migrations as the control plane keeps them (migration 12, spec
// §2.4): a job (status, phases as its steps with their figures in each step's
// details, timestamps, cancel and rollback, lease: store/jobs.ts) and what
// only a migration has — tenant, regions, source and target, configuration,
// and its measured progress. (store/migrations.ts is the schema's.)
import { fromJson, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ConnectionInfoSchema, MigrationConfigSchema, type ConnectionInfo, type MigrationConfig } from "@heliosdb/replication-proto";
import type pg from "pg";
import { jobOf, JobStore, type JobRow, type JobStatus, type Lease, type StepPlan } from "./jobs";

/** The job kind whose jobs are migrations. */
export const MIGRATION_KIND = "migration";

export interface MigrationRow {
  id: string;
  tenantId: string;
  sourceRegion: string;
  targetRegion: string;
  source: ConnectionInfo | null;
  target: ConnectionInfo | null;
  config: MigrationConfig;
  replicationId: string | null;
  estimatedDataSizeBytes: number | null;
  dataTransferredBytes: number | null;
  estimatedCompletion: Date | null;
  downtimeMs: number | null;
  /** When CutoverMigration asked a Manual migration to cut over; null until then. */
  cutoverRequestedAt: Date | null;
  /** Its status, phases (steps), timestamps, cancel, rollback and error. */
  job: JobRow;
  createdAt: Date;
}

/** Measured progress, as a phase reports it. */
export interface MigrationProgress {
  replicationId?: string;
  target?: ConnectionInfo;
  estimatedDataSizeBytes?: number;
  dataTransferredBytes?: number;
  estimatedCompletion?: Date;
  downtimeMs?: number;
}

export interface MigrationFilter {
  tenantId?: string;
  /** Any of these statuses. */
  statuses?: JobStatus[];
}

const info = (v: unknown) => (v == null ? null : fromJson(ConnectionInfoSchema, v as JsonValue));
const infoJson = (v: ConnectionInfo | null | undefined) => (v ? JSON.stringify(toJson(ConnectionInfoSchema, v, { alwaysEmitImplicit: true })) : null);
const num = (v: unknown) => (v == null ? null : Number(v));

function rowOf(r: Record<string, unknown>): MigrationRow {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    sourceRegion: r.source_region as string,
    targetRegion: r.target_region as string,
    source: info(r.source),
    target: info(r.target),
    config: fromJson(MigrationConfigSchema, r.config as JsonValue),
    replicationId: r.replication_id as string | null,
    estimatedDataSizeBytes: num(r.estimated_data_size_bytes),
    dataTransferredBytes: num(r.data_transferred_bytes),
    estimatedCompletion: r.estimated_completion as Date | null,
    downtimeMs: num(r.downtime_ms),
    cutoverRequestedAt: (r.cutover_requested_at as Date | null) ?? null,
    job: jobOf(r.job as Record<string, unknown>),
    createdAt: r.created_at as Date,
  };
}

const SELECT = "SELECT m.*, to_jsonb(j) AS job FROM migrations m JOIN jobs j ON j.id = m.id";

export class MigrationStore {
  private readonly jobs: JobStore;

  constructor(private readonly db: pg.Pool) {
    this.jobs = new JobStore(db);
  }

  /**
   * A new migration and its job (Pending, `steps` as its kind plans them), in
   * one transaction; false when the tenant has a migration that has not
   * ended (one at a time).
   */
  async insert(
    m: Pick<MigrationRow, "id" | "tenantId" | "sourceRegion" | "targetRegion" | "source" | "target" | "config"> & { steps: StepPlan[]; state: JsonObject },
  ): Promise<MigrationRow | false> {
    const client = await this.db.connect();
    try {
      await client.query("BEGIN");
      // Two requests at once for one tenant: the second waits here, then sees the first.
      await client.query("SELECT pg_advisory_xact_lock(hashtext('migration:' || $1))", [m.tenantId]);
      const { rowCount } = await client.query(
        "SELECT 1 FROM migrations m JOIN jobs j ON j.id = m.id WHERE m.tenant_id = $1 AND j.status IN ('Pending', 'InProgress')",
        [m.tenantId],
      );
      if (rowCount) {
        await client.query("ROLLBACK");
        return false;
      }
      await this.jobs.insert({ id: m.id, kind: MIGRATION_KIND, steps: m.steps, state: m.state }, client);
      await client.query(
        `INSERT INTO migrations (id, tenant_id, source_region, target_region, source, target, config) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [m.id, m.tenantId, m.sourceRegion, m.targetRegion, infoJson(m.source), infoJson(m.target),
          JSON.stringify(toJson(MigrationConfigSchema, m.config, { alwaysEmitImplicit: true }))],
      );
      await client.query("COMMIT");
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
    return (await this.get(m.id))!;
  }

  async get(id: string): Promise<MigrationRow | undefined> {
    const { rows } = await this.db.query(`${SELECT} WHERE m.id = $1`, [id]);
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /** The tenant's migration that has not ended, if any. */
  async active(tenantId: string): Promise<MigrationRow | undefined> {
    const { rows } = await this.db.query(`${SELECT} WHERE m.tenant_id = $1 AND j.status IN ('Pending', 'InProgress')`, [tenantId]);
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /** The migration that has not ended whose data `replicationId` carries, if any. */
  async activeByReplication(replicationId: string): Promise<MigrationRow | undefined> {
    const { rows } = await this.db.query(`${SELECT} WHERE m.replication_id = $1 AND j.status IN ('Pending', 'InProgress')`, [replicationId]);
    return rows[0] ? rowOf(rows[0]) : undefined;
  }

  /**
   * Records that the cutover is asked for, while the migration runs and has
   * not been asked to cancel; false otherwise (its phase is checked by the caller).
   */
  async requestCutover(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE migrations m SET cutover_requested_at = coalesce(cutover_requested_at, now())
        FROM jobs j WHERE j.id = m.id AND m.id = $1 AND j.status IN ('Pending', 'InProgress') AND j.cancel_requested_at IS NULL`,
      [id],
    );
    return rowCount === 1;
  }

  /** A page of migrations, newest first, and how many match. */
  async list(filter: MigrationFilter, offset: number, limit: number): Promise<[MigrationRow[], number]> {
    const where = "($1::text IS NULL OR m.tenant_id = $1) AND ($2::text[] IS NULL OR j.status = ANY($2))";
    const params = [filter.tenantId ?? null, filter.statuses ?? null];
    const [page, total] = await Promise.all([
      this.db.query(`${SELECT} WHERE ${where} ORDER BY m.created_at DESC, m.id OFFSET $3 LIMIT $4`, [...params, offset, limit]),
      this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM migrations m JOIN jobs j ON j.id = m.id WHERE ${where}`, params),
    ]);
    return [page.rows.map(rowOf), total.rows[0]!.n];
  }

  /** Progress a phase measured (by the job's lease holder only); false when the lease is not `lease`. */
  async record(id: string, lease: Lease, p: MigrationProgress): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE migrations SET replication_id = coalesce($4, replication_id), target = coalesce($5, target),
              estimated_data_size_bytes = coalesce($6, estimated_data_size_bytes), data_transferred_bytes = coalesce($7, data_transferred_bytes),
              estimated_completion = coalesce($8, estimated_completion), downtime_ms = coalesce($9, downtime_ms)
        WHERE id = $1 AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = $1 AND lease_owner = $2 AND lease_epoch = $3)`,
      [id, lease.owner, lease.epoch, p.replicationId ?? null, infoJson(p.target), p.estimatedDataSizeBytes ?? null, p.dataTransferredBytes ?? null,
        p.estimatedCompletion ?? null, p.downtimeMs ?? null],
    );
    return rowCount === 1;
  }
}
