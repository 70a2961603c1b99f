// The rules of migrations (spec §2.4): who may migrate which tenant (a token
// bound to a tenant acts for it alone; another tenant's migration is
// NOT_FOUND exactly like a missing one), which requests are refused before
// anything runs, where the tenant goes (its primary from routing, a target
// connection in the target region within its grants), and cancel and
// cutover requests. The migration itself is a leased job (migration/kind.ts)
// the orchestrator runs.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { tenantTables } from "@heliosdb/replication-engine";
import { ConnectionInfoSchema, CreateReplicationRequestSchema, MigrationConfigSchema, QoSTier, ReplicationConfigSchema, type ConnectionInfo, type MigrationConfig } from "@heliosdb/replication-proto";
import type { Orchestrator } from "../orchestrator/orchestrator";
import type { ConnectionGrantStore } from "../store/connection-grants";
import type { ConnectionStore } from "../store/connections";
import type { EventStore } from "../store/events";
import type { FailoverStore } from "../store/failovers";
import type { JobStatus } from "../store/jobs";
import type { RoutingStore } from "../store/routing";
import { MIGRATION_KIND, type MigrationRow, type MigrationStore } from "../store/tenant-migrations";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { accessFor, permits, type Access } from "./connection-access";
import type { MigrationState } from "./migration/deps";
import { paging } from "./paging";
import { carrierId, type ReplicationController } from "./replications";
import { requireUuid, Violations } from "./violations";

export interface MigrationControllerDeps {
  migrations: MigrationStore;
  failovers: FailoverStore;
  replications: ReplicationController;
  connections: ConnectionStore;
  grants: ConnectionGrantStore;
  routing: RoutingStore;
  events: EventStore;
  orchestrator: Orchestrator;
}

export interface StartRequest {
  tenantId: string;
  sourceRegion: string;
  targetRegion: string;
  config: MigrationConfig | undefined;
  targetConnectionId: string;
  targetDatabase: string;
}

export interface MigrationListQuery {
  tenantId: string;
  status: string;
  page: number;
  pageSize: number;
}

/** A migration's status as the API spells it (§2.4), and the job statuses each stands for. */
export const MIGRATION_STATUSES: Record<string, JobStatus[]> = {
  InProgress: ["Pending", "InProgress"],
  Completed: ["Completed"],
  // A migration that failed is rolled back (rollback_status says how far).
  Failed: ["Failed", "RolledBack"],
  Cancelled: ["Cancelled"],
};

export function migrationStatus(job: JobStatus): string {
  return Object.entries(MIGRATION_STATUSES).find(([, jobs]) => jobs.includes(job))![0];
}

export const STRATEGIES = ["Automatic", "Manual"];

export class MigrationController {
  constructor(private readonly deps: MigrationControllerDeps) {}

  async start(caller: Caller | undefined, request: StartRequest): Promise<MigrationRow> {
    if (caller?.tenantId && request.tenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only act for tenant ${caller.tenantId}`, { tenant_id: request.tenantId });
    }
    const config = checkRequest(request);
    const { tenantId } = request;
    const id = randomUUID();

    // The source: the tenant's primary, as routing names it, in source_region.
    const routing = await this.deps.routing.get(tenantId);
    if (!routing) {
      throw apiError("VALIDATION_ERROR", `tenant ${tenantId} has no routing: its primary is not known, so there is nothing to migrate from`, { tenant_id: tenantId });
    }
    const primary = create(ConnectionInfoSchema, routing.primary);
    const primaryConnection = await accessFor(this.deps.connections, this.deps.grants, tenantId, primary.connectionId);
    if (!primaryConnection) throw apiError("CONFLICT", `the routing of tenant ${tenantId} names connection ${primary.connectionId}, which the tenant may not use`, { tenant_id: tenantId });
    primary.region ||= primaryConnection.row.region;
    primary.schema ||= "public";
    if (primary.region !== request.sourceRegion) {
      throw apiError("VALIDATION_ERROR", `source_region: tenant ${tenantId}'s primary is in region ${primary.region || "(none)"}, not ${request.sourceRegion}`, {
        violations: [{ field: "source_region", description: `the tenant's primary (routing) is in ${primary.region || "no region"}` }],
      });
    }
    if (routing.writesBlocked) throw apiError("CONFLICT", `tenant ${tenantId}'s writes are blocked: a cutover of it is under way`, { tenant_id: tenantId });

    // One move of a tenant at a time.
    const active = await this.deps.migrations.active(tenantId);
    if (active) throw apiError("CONFLICT", `a migration of tenant ${tenantId} is in progress (${active.id})`, { tenant_id: tenantId, migration_id: active.id });
    const [failovers] = await this.deps.failovers.list({ tenantId, statuses: ["Pending", "InProgress"] }, 0, 1);
    if (failovers[0]) {
      throw apiError("CONFLICT", `a failover of tenant ${tenantId}'s replication ${failovers[0].replicationId} is in progress (${failovers[0].id})`, {
        tenant_id: tenantId,
        failover_id: failovers[0].id,
      });
    }

    // The target, and every check a replication from the primary to it passes (grants, placement, the source's catalog).
    const target = await this.target(request, primary);
    const carrier = carrierRequest(tenantId, primary, target);
    await this.deps.replications.migrationCarrier(carrier, id, config.bulkCopyParallelism, true);
    await this.refuseTenantTablesOnTarget(tenantId, primary, target);

    const steps = this.deps.orchestrator.plan(MIGRATION_KIND);
    if (!steps) throw apiError("SERVICE_UNAVAILABLE", "this server does not run migrations", {}, 5);
    const state: MigrationState = { tenantId, replicationId: carrierId(id) };
    const inserted = await this.deps.migrations.insert({
      id,
      tenantId,
      sourceRegion: request.sourceRegion,
      targetRegion: request.targetRegion,
      source: primary,
      target,
      config,
      steps,
      state: { ...state },
    });
    if (!inserted) {
      const other = await this.deps.migrations.active(tenantId);
      throw apiError("CONFLICT", `a migration of tenant ${tenantId} is in progress (${other?.id ?? ""})`, { tenant_id: tenantId, migration_id: other?.id ?? "" });
    }
    await this.deps.events
      .record({
        replicationId: state.replicationId,
        tenantId,
        type: "MigrationStarted",
        severity: "Info",
        message: `migration ${id} of tenant ${tenantId} from ${request.sourceRegion} to ${request.targetRegion} started by ${caller?.subject ?? "the server"}`,
        details: {
          migration_id: id,
          source_region: request.sourceRegion,
          target_region: request.targetRegion,
          target_connection_id: target.connectionId,
          target_database: target.database,
          cutover_strategy: config.cutoverStrategy,
        },
      })
      .catch(() => undefined);
    await this.deps.orchestrator.signalJob(id);
    return (await this.deps.migrations.get(id)) ?? inserted;
  }

  /** The migration, if the caller may see it (its tenant's); else NOT_FOUND, as for one that does not exist. */
  async get(caller: Caller | undefined, id: string): Promise<MigrationRow> {
    requireUuid("migration_id", id);
    const row = await this.deps.migrations.get(id);
    if (!row || (caller?.tenantId && caller.tenantId !== row.tenantId)) throw apiError("NOT_FOUND", `no migration ${id}`, { migration_id: id });
    return row;
  }

  /** A page of the migrations the caller may see, newest first. */
  async list(caller: Caller | undefined, query: MigrationListQuery): Promise<{ rows: MigrationRow[]; total: number; page: number; pageSize: number }> {
    const { page, pageSize } = paging(query.page, query.pageSize);
    const violations: { field: string; description: string }[] = [];
    const statuses = query.status ? MIGRATION_STATUSES[query.status] : undefined;
    if (query.status && !statuses) violations.push({ field: "status", description: `one of ${Object.keys(MIGRATION_STATUSES).join(", ")}` });
    if (query.tenantId.length > 128) violations.push({ field: "tenant_id", description: "at most 128 characters" });
    if (violations.length > 0) throw apiError("INVALID_REQUEST", "invalid filter", { violations });
    // A tenant's token sees its own tenant's only (another tenant's filter finds nothing).
    if (caller?.tenantId && query.tenantId && query.tenantId !== caller.tenantId) return { rows: [], total: 0, page, pageSize };
    const tenantId = caller?.tenantId || query.tenantId || undefined;
    const [rows, total] = await this.deps.migrations.list({ ...(tenantId ? { tenantId } : {}), ...(statuses ? { statuses } : {}) }, (page - 1) * pageSize, pageSize);
    return { rows, total, page, pageSize };
  }

  /** Cancels before the cutover began (then CONFLICT, the spec's "Cannot cancel after cutover phase starts"). */
  async cancel(caller: Caller | undefined, id: string): Promise<MigrationRow> {
    const row = await this.get(caller, id);
    const outcome = await this.deps.orchestrator.cancel(id);
    if (outcome === "refused") {
      throw apiError("CONFLICT", "Cannot cancel after cutover phase starts", { migration_id: id, current_phase: currentPhase(row) || "Cutover" });
    }
    const now = (await this.deps.migrations.get(id))!;
    if (outcome === "ended" && now.job.status !== "Cancelled") {
      throw apiError("CONFLICT", `the migration has ended (${migrationStatus(now.job.status)}): there is nothing to cancel`, { migration_id: id, status: migrationStatus(now.job.status) });
    }
    return now;
  }

  /** Asks a Manual migration in CDCCatchup to cut over (it begins once the lag holds under the threshold). */
  async cutover(caller: Caller | undefined, id: string): Promise<MigrationRow> {
    const row = await this.get(caller, id);
    const phase = currentPhase(row);
    if (row.config.cutoverStrategy !== "Manual") {
      throw apiError("CONFLICT", "the migration's cutover_strategy is Automatic: it cuts over by itself", { migration_id: id, cutover_strategy: row.config.cutoverStrategy });
    }
    if (phase !== "CDCCatchup" || row.job.cancelRequestedAt) {
      throw apiError("CONFLICT", `a cutover can be asked for in the CDCCatchup phase only; the migration is ${phase ? `in ${phase}` : migrationStatus(row.job.status)}`, {
        migration_id: id,
        current_phase: phase,
        status: migrationStatus(row.job.status),
      });
    }
    if (!(await this.deps.migrations.requestCutover(id))) throw apiError("CONFLICT", "the migration has ended or is being cancelled", { migration_id: id });
    return (await this.deps.migrations.get(id))!;
  }

  // The connection in target_region the tenant may use (the one named, or the only one), and the database on it.
  private async target(request: StartRequest, primary: ConnectionInfo): Promise<ConnectionInfo> {
    const { tenantId, targetRegion } = request;
    let access: Access | undefined;
    if (request.targetConnectionId) {
      access = await accessFor(this.deps.connections, this.deps.grants, tenantId, request.targetConnectionId);
      if (!access) invalid("target_connection_id", `no connection ${request.targetConnectionId} that tenant ${tenantId} may use`);
      if (access.row.region !== targetRegion) invalid("target_connection_id", `connection ${request.targetConnectionId} is in region ${access.row.region || "(none)"}, not target_region ${targetRegion}`);
    } else {
      const [rows] = await this.deps.connections.list(targetRegion, 0, 100, tenantId);
      const usable: Access[] = [];
      for (const r of rows) {
        const a = await accessFor(this.deps.connections, this.deps.grants, tenantId, r.id);
        if (a) usable.push(a);
      }
      if (usable.length === 0) invalid("target_region", `no registered connection in region ${targetRegion} that tenant ${tenantId} may use`);
      if (usable.length > 1) {
        invalid("target_connection_id", `${usable.length} connections in region ${targetRegion} that tenant ${tenantId} may use (${usable.map((a) => a.row.id).join(", ")}): name one with target_connection_id`);
      }
      access = usable[0]!;
    }
    const connectionId = access.row.id;
    // By default the source's database name — unless the tenant's grant there names one other database only (the demo's replica_db).
    const granted = access.grant?.databases ?? [];
    const database =
      request.targetDatabase ||
      (access.grant && !permits(granted, primary.database) && granted.length === 1 && granted[0] !== "*" ? granted[0]! : primary.database);
    return create(ConnectionInfoSchema, {
      connectionId,
      database,
      schema: primary.schema || "public",
      region: targetRegion,
    });
  }

  // The initial sync empties the target's tables before it copies: a target that already holds any of the tenant's tables is refused.
  private async refuseTenantTablesOnTarget(tenantId: string, source: ConnectionInfo, target: ConnectionInfo): Promise<void> {
    const [s, t] = await Promise.all([this.deps.connections.clientConfig(source.connectionId, source.database), this.deps.connections.clientConfig(target.connectionId, target.database)]);
    if (!s || !t) throw apiError("CONFLICT", "a connection of the migration was removed meanwhile", { tenant_id: tenantId });
    const [sourceTables, targetTables] = await Promise.all([tenantTables({ connection: s, schema: source.schema }, []), tenantTables({ connection: t, schema: target.schema }, [])]);
    const both = sourceTables.filter((x) => targetTables.includes(x));
    if (both.length > 0) {
      throw apiError(
        "CONFLICT",
        `the target database ${target.database} (schema ${target.schema}) already holds tables of the tenant (${both.join(", ")}): ` +
          "the migration would replace them. Drop them first (a former primary left by an earlier migration or failover keeps them, fenced; cleanup_source drops them)",
        { tenant_id: tenantId, target_connection_id: target.connectionId, target_database: target.database, tables: both.join(", ") },
      );
    }
  }
}

/** The phase that runs (or is next), "" once the migration ended. */
export function currentPhase(row: MigrationRow): string {
  if (migrationStatus(row.job.status) !== "InProgress") return "";
  const step = row.job.steps.find((s) => s.status === "InProgress") ?? row.job.steps.find((s) => s.status === "Pending");
  return step?.step ?? "";
}

function invalid(field: string, description: string): never {
  throw apiError("VALIDATION_ERROR", `${field}: ${description}`, { violations: [{ field, description }] });
}

// Field checks, all at once; the configuration with its defaults filled in.
function checkRequest(request: StartRequest): MigrationConfig {
  const v = new Violations();
  if (v.required("tenant_id", request.tenantId)) v.bounded("tenant_id", request.tenantId, 128);
  if (v.required("source_region", request.sourceRegion)) v.bounded("source_region", request.sourceRegion, 64);
  if (v.required("target_region", request.targetRegion)) v.bounded("target_region", request.targetRegion, 64);
  if (request.sourceRegion && request.sourceRegion === request.targetRegion) v.add("target_region", "must differ from source_region: a migration moves a tenant across regions");
  if (request.targetConnectionId) v.uuid("target_connection_id", request.targetConnectionId);
  v.bounded("target_database", request.targetDatabase, 63, "bytes");
  const c = create(MigrationConfigSchema, request.config ?? {});
  if (c.bulkCopyParallelism < 0 || c.bulkCopyParallelism > 64) v.add("migration_config.bulk_copy_parallelism", "must be from 1 to 64");
  if (c.cdcLagThresholdSeconds < 0 || c.cdcLagThresholdSeconds > 3600) v.add("migration_config.cdc_lag_threshold_seconds", "must be from 1 to 3600");
  if (c.cutoverStrategy && !STRATEGIES.includes(c.cutoverStrategy)) v.add("migration_config.cutover_strategy", `one of ${STRATEGIES.join(", ")}`);
  v.check();
  c.bulkCopyParallelism ||= 4;
  c.cdcLagThresholdSeconds ||= 1;
  c.cutoverStrategy ||= "Automatic";
  return c;
}

// The carrier replication: every table of the primary's schema, whole, at the Premium tier (a migration is brief and its lag decides the cutover).
export function carrierRequest(tenantId: string, source: ConnectionInfo, target: ConnectionInfo, tables: string[] = []) {
  return create(CreateReplicationRequestSchema, {
    tenantId,
    source,
    target,
    config: create(ReplicationConfigSchema, { qosTier: QoSTier.PREMIUM, tableFilter: tables.map((t) => `${t}.*`) }),
  });
}
