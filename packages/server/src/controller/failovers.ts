// The rules of failovers (spec §2.3): who may fail over which replication
// (the replication controller's tenant isolation: another tenant's
// replication, or failover, is NOT_FOUND exactly like a missing one), which
// requests are refused before anything runs, and the failover's record. The
// failover itself is a leased job (failover/kind.ts) the orchestrator runs.
import { randomUUID } from "node:crypto";
import type { Orchestrator } from "../orchestrator/orchestrator";
import type { EventStore } from "../store/events";
import { FAILOVER_KIND, type FailoverFilter, type FailoverRow, type FailoverStore, type FailoverTrigger } from "../store/failovers";
import type { JobStatus } from "../store/jobs";
import { samePrimary, type RoutingStore } from "../store/routing";
import type { MigrationStore } from "../store/tenant-migrations";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import type { FailoverState } from "./failover/deps";
import { replicaData } from "./failover/replica-data";
import { paging } from "./paging";
import type { ReplicationController } from "./replications";
import { requireUuid, UUID, Violations } from "./violations";

export interface FailoverControllerDeps {
  failovers: FailoverStore;
  replications: ReplicationController;
  routing: RoutingStore;
  events: EventStore;
  orchestrator: Orchestrator;
  /** Migrations: no failover of a tenant's replication while a migration of the tenant runs (it moves the primary too). */
  migrations?: MigrationStore;
}

export interface TriggerRequest {
  replicationId: string;
  reason: string;
  force: boolean;
  updateRouting: boolean;
  reverseReplication: boolean;
  /** Who decided: a request (Manual, the default) or the server's monitor of the source (Automatic: failover/automatic.ts). */
  trigger?: FailoverTrigger;
}

export interface FailoverListQuery {
  replicationId: string;
  status: string;
  page: number;
  pageSize: number;
}

/** A failover's status as the API spells it, and the job statuses each stands for. */
export const FAILOVER_STATUSES: Record<string, JobStatus[]> = {
  InProgress: ["Pending", "InProgress"],
  Completed: ["Completed"],
  Failed: ["Failed"],
  RolledBack: ["RolledBack", "Cancelled"],
};

/** The API's status of a failover's job (a job nobody has begun yet is InProgress: it begins at once). */
export function failoverStatus(job: JobStatus): string {
  return Object.entries(FAILOVER_STATUSES).find(([, jobs]) => jobs.includes(job))![0];
}

export class FailoverController {
  constructor(private readonly deps: FailoverControllerDeps) {}

  async trigger(caller: Caller | undefined, request: TriggerRequest): Promise<FailoverRow> {
    requireUuid("replication_id", request.replicationId);
    const row = await this.deps.replications.get(caller, request.replicationId);
    const v = new Violations();
    v.bounded("reason", request.reason, 1000);
    // A reverse replication copies the new primary over the old one: only a replica that holds the tenant's data whole may be.
    const data = replicaData(row.config);
    if (request.reverseReplication && (data.rewritten.length > 0 || data.partial.length > 0)) {
      v.add(
        "reverse_replication",
        `the replica does not hold the tenant's data as written (${[...data.rewritten, ...data.partial].join("; ")}): ` +
          "a reverse replication would copy it over the old primary's",
      );
    }
    v.check();
    if (row.desired === "created" || row.desired === "stopped") {
      throw apiError("CONFLICT", `cannot fail over a replication that is ${row.status}: ${row.desired === "created" ? "it has never run" : "its replica no longer follows the source"}`, {
        replication_id: row.id,
        current_status: row.status,
      });
    }
    const active = await this.deps.failovers.active(row.id);
    if (active) throw inProgress(row.id, active.id, "CONFLICT");
    const migration = await this.deps.migrations?.active(row.tenantId);
    if (migration) {
      throw apiError("CONFLICT", `a migration of tenant ${row.tenantId} is in progress (${migration.id}): cancel it, or fail over once it has ended`, {
        replication_id: row.id,
        migration_id: migration.id,
      });
    }
    if (request.updateRouting) {
      // Routing that names neither side: switching it would move clients off a primary this failover never fenced.
      const routing = await this.deps.routing.get(row.tenantId);
      if (routing && !samePrimary(routing.primary, row.source) && !samePrimary(routing.primary, row.target)) {
        throw apiError("CONFLICT", `the routing of tenant ${row.tenantId} names another primary than this replication's source: a failover would move its clients off a database it does not fence`, {
          replication_id: row.id,
          routing_primary_connection_id: routing.primary.connectionId,
          routing_primary_database: routing.primary.database,
        });
      }
    }
    const figures = row.figures;
    const max = row.config.maxLagSeconds;
    if (!request.force && figures && max > 0 && figures.lagSeconds > max) {
      throw apiError("REPLICATION_LAG_EXCEEDED", "Replication lag exceeded maximum threshold", {
        replication_id: row.id,
        // As measured (rounded, a lag just past the bound would read as the bound).
        current_lag_seconds: figures.lagSeconds,
        max_lag_seconds: max,
      });
    }
    const steps = this.deps.orchestrator.plan(FAILOVER_KIND);
    if (!steps) throw apiError("SERVICE_UNAVAILABLE", "this server does not run failovers", {}, 5);
    const state: FailoverState = {
      replicationId: row.id,
      tenantId: row.tenantId,
      force: request.force,
      updateRouting: request.updateRouting,
      reverseReplication: request.reverseReplication,
    };
    const id = randomUUID();
    const trigger = request.trigger ?? "Manual";
    const inserted = await this.deps.failovers.insert({
      id,
      replicationId: row.id,
      tenantId: row.tenantId,
      trigger,
      reason: request.reason,
      force: request.force,
      updateRouting: request.updateRouting,
      oldPrimary: row.source,
      newPrimary: row.target,
      // The drain takes about the replica's lag; the other steps, a moment each.
      estimatedDurationSeconds: Math.max(1, Math.ceil(figures?.lagSeconds ?? 0)),
      steps,
      state: { ...state },
    });
    if (!inserted) {
      const other = await this.deps.failovers.active(row.id);
      throw inProgress(row.id, other?.id ?? "", "CONFLICT");
    }
    await this.deps.events
      .record({
        replicationId: row.id,
        tenantId: row.tenantId,
        type: "FailoverStarted",
        severity: "Info",
        message: `failover ${id} started ${trigger === "Automatic" ? "automatically" : `by ${caller?.subject ?? "the server"}`}${request.reason ? `: ${request.reason}` : ""}`,
        details: {
          failover_id: id,
          trigger,
          reason: request.reason,
          force: String(request.force),
          update_routing: String(request.updateRouting),
          reverse_replication: String(request.reverseReplication),
        },
      })
      .catch(() => undefined);
    await this.deps.orchestrator.signalJob(id);
    return (await this.deps.failovers.get(id)) ?? inserted;
  }

  /** The failover, if the caller may see it (its replication's tenant); else NOT_FOUND, as for one that does not exist. */
  async get(caller: Caller | undefined, id: string): Promise<FailoverRow> {
    requireUuid("failover_id", id);
    const row = await this.deps.failovers.get(id);
    if (!row || (caller?.tenantId && caller.tenantId !== row.tenantId)) throw apiError("NOT_FOUND", `no failover ${id}`, { failover_id: id });
    return row;
  }

  /** A page of the failovers the caller may see, newest first. */
  async list(caller: Caller | undefined, query: FailoverListQuery): Promise<{ rows: FailoverRow[]; total: number; page: number; pageSize: number }> {
    const { page, pageSize } = paging(query.page, query.pageSize);
    const violations: { field: string; description: string }[] = [];
    if (query.replicationId && !UUID.test(query.replicationId)) violations.push({ field: "replication_id", description: `not a UUID: "${query.replicationId}"` });
    const statuses = query.status ? FAILOVER_STATUSES[query.status] : undefined;
    if (query.status && !statuses) violations.push({ field: "status", description: `one of ${Object.keys(FAILOVER_STATUSES).join(", ")}` });
    if (violations.length > 0) throw apiError("INVALID_REQUEST", "invalid filter", { violations });
    const filter: FailoverFilter = {
      ...(query.replicationId ? { replicationId: query.replicationId } : {}),
      ...(caller?.tenantId ? { tenantId: caller.tenantId } : {}),
      ...(statuses ? { statuses } : {}),
    };
    const [rows, total] = await this.deps.failovers.list(filter, (page - 1) * pageSize, pageSize);
    return { rows, total, page, pageSize };
  }
}

/** Refused while a failover of the replication runs: CONFLICT (delete, a second failover) or FAILOVER_IN_PROGRESS (update, start, pause, stop). */
export function inProgress(replicationId: string, failoverId: string, code: "CONFLICT" | "FAILOVER_IN_PROGRESS") {
  return apiError(code, `a failover of replication ${replicationId} is in progress (${failoverId})`, { replication_id: replicationId, failover_id: failoverId });
}
