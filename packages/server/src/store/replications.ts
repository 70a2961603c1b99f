// Replications as the control plane keeps them: the request (source, target,
// config as proto3 JSON), what the operator wants (desired), and what the
// owning node last observed (status, health, figures).
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import {
  ConnectionInfoSchema,
  ReplicationConfigSchema,
  type ConnectionInfo,
  type ReplicationConfig,
} from "@heliosdb/replication-proto";
import type { ObservedFigures } from "@heliosdb/replication-engine";
import type pg from "pg";

export type Desired = "created" | "running" | "paused" | "stopped";

export interface StartOptions {
  fromCheckpoint?: string;
  initialSyncParallelism?: number;
}

/** Observed figures as stored: JSON-safe (LSNs as strings, dates as ISO text). */
export type StoredFigures = Omit<ObservedFigures, "lastCheckpoint" | "statusSince" | "retry"> & {
  lastCheckpoint?: { lsn: string; timestamp: string; transactionId: number };
  statusSince: string;
  /** While a failure waits for its retry (ObservedFigures.retry, its time as ISO text). */
  retry?: Omit<NonNullable<ObservedFigures["retry"]>, "nextAttemptAt"> & { nextAttemptAt: string };
  /** When the owner read these figures from its pipeline (its clock). Absent in rows stored before it existed. */
  observedAt?: string;
};

export interface ReplicationRow {
  id: string;
  tenantId: string;
  source: ConnectionInfo;
  target: ConnectionInfo;
  config: ReplicationConfig;
  desired: Desired;
  startOptions: StartOptions;
  generation: number;
  status: string;
  health: string;
  estimatedDataSizeGb: number | null;
  estimatedInitialSyncDurationHours: number | null;
  figures: StoredFigures | null;
  /** Whether some server held an unexpired lease on it when the row was read (false where a query does not say). */
  leaseLive: boolean;
  /** The failover that created it as its reverse replication (its target is the fenced old primary); null otherwise. */
  reverseOf: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ListFilter {
  tenantId?: string;
  status?: string;
  /** The proto enum name, e.g. PREMIUM. */
  qosTier?: string;
}

const SORTABLE: Record<string, string> = {
  created_at: "created_at",
  updated_at: "updated_at",
  tenant_id: "tenant_id",
  status: "status",
  priority: "(config->>'priority')::int",
};

export const SORT_FIELDS = Object.keys(SORTABLE);

// Read with every row: whether a server holds a live lease on it. Lease rows
// notify the replication's id when taken or released (migration 3), so a
// cached row learns of both; a renewal notifies nothing, but its owner's
// observation in the same pass changes the row.
const LEASE_LIVE = "(SELECT l.expires_at > now() FROM leases l WHERE l.replication_id = replications.id) AS lease_live";

const json = (schema: typeof ConnectionInfoSchema | typeof ReplicationConfigSchema, value: ConnectionInfo | ReplicationConfig) =>
  JSON.stringify(toJson(schema, value as never, { alwaysEmitImplicit: true }));

function row(r: Record<string, unknown>): ReplicationRow {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    source: fromJson(ConnectionInfoSchema, r.source as JsonValue),
    target: fromJson(ConnectionInfoSchema, r.target as JsonValue),
    config: fromJson(ReplicationConfigSchema, r.config as JsonValue),
    desired: r.desired as Desired,
    startOptions: r.start_options as StartOptions,
    generation: r.generation as number,
    status: r.status as string,
    health: r.health as string,
    estimatedDataSizeGb: r.estimated_data_size_gb as number | null,
    estimatedInitialSyncDurationHours: r.estimated_initial_sync_duration_hours as number | null,
    figures: r.figures as StoredFigures | null,
    leaseLive: r.lease_live === true,
    reverseOf: (r.reverse_of as string | null) ?? null,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

export class ReplicationStore {
  constructor(private readonly db: pg.Pool) {}

  /** Inserts; resolves false when an active replication of the same tenant, source and target exists. */
  async insert(
    r: Omit<ReplicationRow, "createdAt" | "updatedAt" | "figures" | "health" | "startOptions" | "generation" | "leaseLive" | "reverseOf"> & { reverseOf?: string },
  ): Promise<ReplicationRow | false> {
    try {
      const { rows } = await this.db.query(
        `INSERT INTO replications (id, tenant_id, source, target, config, desired, status,
                                   estimated_data_size_gb, estimated_initial_sync_duration_hours, reverse_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *, ${LEASE_LIVE}`,
        [r.id, r.tenantId, json(ConnectionInfoSchema, r.source), json(ConnectionInfoSchema, r.target), json(ReplicationConfigSchema, r.config),
          r.desired, r.status, r.estimatedDataSizeGb, r.estimatedInitialSyncDurationHours, r.reverseOf ?? null],
      );
      return row(rows[0]);
    } catch (e) {
      if ((e as pg.DatabaseError).code === "23505") return false;
      throw e;
    }
  }

  async get(id: string): Promise<ReplicationRow | undefined> {
    const { rows } = await this.db.query(`SELECT *, ${LEASE_LIVE} FROM replications WHERE id = $1 AND deleted_at IS NULL`, [id]);
    return rows[0] ? row(rows[0]) : undefined;
  }

  async list(filter: ListFilter, sortBy: string, descending: boolean, offset: number, limit: number): Promise<[ReplicationRow[], number]> {
    const where = `deleted_at IS NULL AND ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR status = $2)
                   AND ($3::text IS NULL OR config->>'qosTier' = $3)`;
    const params = [filter.tenantId ?? null, filter.status ?? null, filter.qosTier ?? null];
    const order = `${SORTABLE[sortBy] ?? "created_at"} ${descending ? "DESC" : "ASC"}, id`;
    const [page, total] = await Promise.all([
      this.db.query(`SELECT *, ${LEASE_LIVE} FROM replications WHERE ${where} ORDER BY ${order} OFFSET $4 LIMIT $5`, [...params, offset, limit]),
      this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM replications WHERE ${where}`, params),
    ]);
    return [page.rows.map(row), total.rows[0]!.n];
  }

  /**
   * Saves a new configuration. `restart` bumps the generation (the owner
   * restarts the pipeline); `resync` also makes that restart copy everything
   * again.
   */
  async updateConfig(id: string, config: ReplicationConfig, change: "live" | "restart" | "resync"): Promise<ReplicationRow | undefined> {
    const { rows } = await this.db.query(
      `UPDATE replications SET config = $2, updated_at = now(),
              generation = generation + CASE WHEN $3 = 'live' THEN 0 ELSE 1 END,
              start_options = CASE WHEN $3 = 'resync' THEN start_options || '{"fromCheckpoint": "resync"}' ELSE start_options END
        WHERE id = $1 AND deleted_at IS NULL RETURNING *, ${LEASE_LIVE}`,
      [id, json(ReplicationConfigSchema, config), change],
    );
    return rows[0] ? row(rows[0]) : undefined;
  }

  /**
   * Sets what the operator wants. `restart`: a new pipeline is to run, so the
   * generation moves (an owner still running an old one lets it go) and the
   * health is Unknown until the new one is observed.
   */
  async setDesired(id: string, desired: Desired, status: string, startOptions?: StartOptions, restart = false): Promise<ReplicationRow | undefined> {
    const { rows } = await this.db.query(
      `UPDATE replications SET desired = $2, status = $3, start_options = coalesce($4, start_options), updated_at = now(),
              generation = generation + CASE WHEN $5 THEN 1 ELSE 0 END,
              health = CASE WHEN $5 THEN 'Unknown' ELSE health END
        WHERE id = $1 AND deleted_at IS NULL RETURNING *, ${LEASE_LIVE}`,
      [id, desired, status, startOptions ? JSON.stringify(startOptions) : null, restart],
    );
    return rows[0] ? row(rows[0]) : undefined;
  }

  /**
   * Records what the owner observed: only while `owner` holds the lease and
   * runs the current `generation`, so that a pipeline being replaced, or one
   * whose node lost the lease, never overwrites its successor's figures. The
   * status and health are the owner's only while the replication should run:
   * a pause or stop decided them. A known checkpoint is kept when the
   * observation has none (a pipeline restarting, or copying again, has not
   * reached its own yet). `updated_at` moves only when the status changes.
   *
   * `generation` "final": the last observation of a pipeline its owner lets
   * go (paused, stopped, deleted), made while it still holds the lease — so
   * no successor has run yet, whatever generation a start that came in
   * meanwhile set. Its figures only (the next pipeline's history starts from
   * them); the status is the request's.
   */
  async observe(id: string, owner: string, generation: number | "final", status: string, health: string, figures: StoredFigures): Promise<void> {
    const final = generation === "final";
    await this.db.query(
      `UPDATE replications SET
              figures = CASE WHEN figures ? 'lastCheckpoint' AND NOT $6::jsonb ? 'lastCheckpoint'
                             THEN $6::jsonb || jsonb_build_object('lastCheckpoint', figures->'lastCheckpoint') ELSE $6::jsonb END,
              health = CASE WHEN desired = 'running' AND NOT $7 THEN $5 ELSE health END,
              status = CASE WHEN desired = 'running' AND NOT $7 THEN $4 ELSE status END,
              updated_at = CASE WHEN desired <> 'running' OR $7 OR status = $4 THEN updated_at ELSE now() END
        WHERE id = $1 AND deleted_at IS NULL AND ($7 OR generation = $3)
          AND EXISTS (SELECT 1 FROM leases WHERE replication_id = $1 AND owner = $2)`,
      [id, owner, final ? 0 : generation, status, health, JSON.stringify(figures), final],
    );
  }

  /**
   * Counts for the health check: replications that should run, those in
   * Error, and those that should run but are unowned: no live lease, or
   * figures not observed since `observedSince` (the same rule as views.ts).
   */
  async census(observedSince: Date): Promise<{ running: number; error: number; unowned: number }> {
    const { rows } = await this.db.query<{ running: number; error: number; unowned: number }>(
      `SELECT count(*) FILTER (WHERE desired = 'running')::int AS running,
              count(*) FILTER (WHERE status = 'Error')::int AS error,
              count(*) FILTER (WHERE desired = 'running' AND NOT (coalesce(lease_live, false)
                                 AND coalesce((figures->>'observedAt')::timestamptz >= $1, false)))::int AS unowned
         FROM (SELECT desired, status, figures, ${LEASE_LIVE} FROM replications WHERE deleted_at IS NULL AND desired <> 'stopped') replications`,
      [observedSince],
    );
    return rows[0]!;
  }

  /** Forgets an explicit start position or resync once the pipeline started from it: a restart resumes from the checkpoint. */
  async clearStartPosition(id: string): Promise<void> {
    await this.db.query("UPDATE replications SET start_options = start_options - 'fromCheckpoint' WHERE id = $1", [id]);
  }

  async markDeleted(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      "UPDATE replications SET deleted_at = now(), desired = 'stopped' WHERE id = $1 AND deleted_at IS NULL",
      [id],
    );
    return rowCount === 1;
  }

  /** Replications some node should be running. */
  async wanted(): Promise<ReplicationRow[]> {
    const { rows } = await this.db.query("SELECT * FROM replications WHERE desired = 'running' AND deleted_at IS NULL ORDER BY (config->>'priority')::int DESC NULLS LAST, created_at");
    return rows.map(row);
  }

  /** Replications paused by request: their slots keep the source's WAL, which some node should watch. */
  async paused(): Promise<ReplicationRow[]> {
    const { rows } = await this.db.query("SELECT * FROM replications WHERE desired = 'paused' AND status = 'Paused' AND deleted_at IS NULL");
    return rows.map(row);
  }

  async usesConnection(connectionId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `SELECT 1 FROM replications WHERE deleted_at IS NULL AND desired <> 'stopped'
          AND (source->>'connectionId' = $1 OR target->>'connectionId' = $1) LIMIT 1`,
      [connectionId],
    );
    return (rowCount ?? 0) > 0;
  }
}
