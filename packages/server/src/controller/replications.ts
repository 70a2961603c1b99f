// The rules of replications: who may see and change which (the caller's
// tenant), what a valid request is (checked against the real source
// catalog), which transitions the state machine allows, and what is
// persisted. Services translate messages; this decides.
import { createHash, randomUUID } from "node:crypto";
import { clone, create, type JsonObject } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import {
  ConnectionInfoSchema,
  CreateReplicationRequestSchema,
  QoSTier,
  ReplicationConfigSchema,
  type ConnectionInfo,
  type CreateReplicationRequest,
  type ReplicationConfig,
} from "@heliosdb/replication-proto";
import { connect, PreflightError, RowFilterError, validate, type KeyProvider, type TokenVault } from "@heliosdb/replication-engine";
import type pg from "pg";
import type { Orchestrator } from "../orchestrator/orchestrator";
import type { ConnectionGrantStore } from "../store/connection-grants";
import type { ConnectionStore } from "../store/connections";
import type { EventStore } from "../store/events";
import type { FailoverStore } from "../store/failovers";
import type { MigrationStore } from "../store/tenant-migrations";
import type { DatabaseIdentity } from "../store/control-plane";
import type { ReplicationCache } from "../store/replication-cache";
import { SORT_FIELDS, type Desired, type ListFilter, type ReplicationRow, type ReplicationStore, type StartOptions } from "../store/replications";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { accessFor, connectionFailed, permits, systemSchema } from "./connection-access";
import { estimate } from "./estimate";
import { inProgress } from "./failovers";
import { checkPlacement } from "./placement";
import { paging } from "./paging";
import { requireUuid, Violations } from "./violations";

export interface ReplicationControllerDeps {
  replications: ReplicationStore;
  connections: ConnectionStore;
  grants: ConnectionGrantStore;
  /** The control plane's own database: no replication reads from or writes into it. */
  controlPlane: () => Promise<DatabaseIdentity>;
  orchestrator: Orchestrator;
  keys: KeyProvider;
  vault?: TokenVault;
  /** Rows for reads, kept fresh across servers; without it every read queries. */
  cache?: ReplicationCache;
  /** The event log: a configuration change is recorded there (ConfigChanged). */
  events?: EventStore;
  /** Failovers: while one of a replication runs, the replication is not changed by request. */
  failovers?: FailoverStore;
  /** Migrations: a migration's carrier replication is not changed by request while the migration runs. */
  migrations?: MigrationStore;
}

/** Which statuses each control request accepts; anything else is a CONFLICT naming both states. */
const TRANSITIONS: Record<"start" | "pause" | "stop", { from: Desired[]; to: Desired }> = {
  start: { from: ["created", "running", "paused"], to: "running" },
  pause: { from: ["running", "paused"], to: "paused" },
  stop: { from: ["created", "running", "paused", "stopped"], to: "stopped" },
};

/** A list request as the API takes it: "" and 0 are unset. */
export interface ListQuery {
  tenantId: string;
  /** The spec's status name, e.g. Streaming. */
  status?: string;
  /** The proto enum name, e.g. PREMIUM. */
  qosTier?: string;
  sortBy: string;
  descending: boolean;
  page: number;
  pageSize: number;
}

/** A start request as the API takes it: "" and 0 are unset. */
export interface StartRequest {
  fromCheckpoint: string;
  initialSyncParallelism: number;
}

// An LSN as PostgreSQL writes it (X/Y, hexadecimal) or as a decimal number.
const LSN = /^(\d+|[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})$/;

export class ReplicationController {
  constructor(private readonly deps: ReplicationControllerDeps) {}

  async create(caller: Caller | undefined, request: CreateReplicationRequest): Promise<ReplicationRow> {
    return this.createAs(caller, request, randomUUID());
  }

  /**
   * The replication from a failover's new primary (the forward replication's
   * target) back to the old one (its source), which the failover creates
   * (`reverse_replication`) by the rules of any create: the tenant's grants,
   * placement, a check against the new primary's catalog. It carries the
   * tables the forward one carried, whole (the failover refuses a reverse
   * replication of a replica that does not hold them whole), with the same
   * QoS. Its id is derived from the failover's, so a failover that asks again
   * finds the one it made; started at once.
   */
  async createReverse(forward: ReplicationRow, failoverId: string, tables: string[]): Promise<ReplicationRow> {
    const id = reverseId(failoverId);
    let row = await this.deps.replications.get(id);
    if (!row) {
      const config = clone(ReplicationConfigSchema, forward.config);
      config.tableFilter = tables.map((t) => `${t}.*`);
      config.transforms = [];
      config.rowFilter = undefined;
      config.automaticFailover = undefined;
      const request = create(CreateReplicationRequestSchema, { tenantId: forward.tenantId, source: forward.target, target: forward.source, config });
      row = await this.createAs(undefined, request, id, failoverId);
    }
    if (row.desired === "created") row = (await this.start(undefined, id, { fromCheckpoint: "", initialSyncParallelism: 0 })).row;
    return row;
  }

  /**
   * The replication that carries a migration's data (its id derived from the
   * migration's, so a second call finds the first's), by the rules of any
   * create: the tenant's grants, placement, a check against the source's
   * catalog. `check`: only checked (the migration's request is refused with
   * what a create would say), nothing stored. Otherwise created and started,
   * its initial sync in `parallelism` workers.
   */
  async migrationCarrier(request: CreateReplicationRequest, migrationId: string, parallelism: number, check = false): Promise<ReplicationRow | undefined> {
    const id = carrierId(migrationId);
    if (check) {
      await this.checked(undefined, request, id);
      return undefined;
    }
    let row = (await this.deps.replications.get(id)) ?? (await this.createAs(undefined, request, id));
    // Not through start(): that refuses a replication whose migration runs, which this is.
    if (row.desired === "created") row = await this.transition(row, "start", { fromCheckpoint: "auto", initialSyncParallelism: parallelism });
    return row;
  }

  /** A migration's carrier stopped, its slot and publication dropped, what it created on the target dropped, and deleted (a rollback); again is harmless. */
  async removeCarrier(migrationId: string): Promise<void> {
    const row = await this.deps.replications.get(carrierId(migrationId));
    if (!row) return;
    if (row.desired !== "stopped") await this.deps.replications.setDesired(row.id, "stopped", "Stopped");
    await this.end(row, true);
    await this.deps.replications.markDeleted(row.id);
    await this.deps.orchestrator.signal(row.id);
  }

  private async createAs(caller: Caller | undefined, request: CreateReplicationRequest, id: string, reverseOf?: string): Promise<ReplicationRow> {
    const { source, target, config, estimated } = await this.checked(caller, request, id);
    const row = await this.deps.replications.insert({
      id,
      tenantId: request.tenantId,
      source,
      target,
      config,
      desired: "created",
      status: "Initializing",
      estimatedDataSizeGb: estimated.dataSizeGb,
      estimatedInitialSyncDurationHours: estimated.initialSyncHours,
      ...(reverseOf ? { reverseOf } : {}),
    });
    if (!row) {
      throw apiError("CONFLICT", "an active replication of this tenant from this source to this target already exists", {
        tenant_id: request.tenantId,
        source_connection_id: source.connectionId,
        target_connection_id: target.connectionId,
      });
    }
    return row;
  }

  // Every check of a create, nothing stored.
  private async checked(caller: Caller | undefined, request: CreateReplicationRequest, id: string) {
    if (caller?.tenantId && request.tenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only act for tenant ${caller.tenantId}`, { tenant_id: request.tenantId });
    }
    const v = new Violations();
    if (v.required("tenant_id", request.tenantId)) v.bounded("tenant_id", request.tenantId, 128);
    const source = await this.endpoint("source", request.source, request.tenantId, v);
    const target = await this.endpoint("target", request.target, request.tenantId, v);
    const config = request.config ?? create(ReplicationConfigSchema, { qosTier: QoSTier.STANDARD });
    checkConfig(config, v);
    v.check();
    const [sourceConfig, targetConfig] = await Promise.all([this.clientConfig(source), this.clientConfig(target)]);
    // Where the data would come from and go to: databases that exist, not the control plane's, not the source itself.
    await checkPlacement(caller, { info: source, config: sourceConfig }, { info: target, config: targetConfig }, this.deps.controlPlane);
    const checked = await this.checkAgainstSource(caller, id, request.tenantId, sourceConfig, source.schema, config);
    const estimated = await estimate(sourceConfig, checked.tables.map((t) => ({ schema: source.schema, table: t.table, sizeBytes: t.sizeBytes })));
    return { source, target, config, estimated };
  }

  /**
   * The replication, if the caller may see it; else NOT_FOUND (a tenant-bound
   * caller never learns of another tenant's). `cached` reads may come from
   * memory (as current as the database; "latest": as the last notification
   * left it, for periodic samples that need no read-your-writes); decisions
   * that change the row read it afresh. `arrived` is the cache session's mark
   * when the request arrived (services/context.ts `arrivalKey`).
   */
  async get(caller: Caller | undefined, id: string, options: { cached?: boolean | "latest"; arrived?: number } = {}): Promise<ReplicationRow> {
    requireUuid("id", id);
    const cache = options.cached ? this.deps.cache : undefined;
    const row = cache ? await (options.cached === "latest" ? cache.latest(id) : cache.get(id, options.arrived)) : await this.deps.replications.get(id);
    return visible(caller, id, row);
  }

  /**
   * As `get` with `cached: "latest"`, without a promise when this server
   * keeps the row: a metric stream reads it at every sample of every
   * subscriber.
   */
  latest(caller: Caller | undefined, id: string): ReplicationRow | Promise<ReplicationRow> {
    requireUuid("id", id);
    const kept = this.deps.cache?.kept(id);
    return kept ? visible(caller, id, kept) : this.get(caller, id, { cached: "latest" });
  }

  /** A page of the replications the caller may see: a tenant-bound caller lists its tenant only. */
  async list(caller: Caller | undefined, query: ListQuery) {
    const { page, pageSize } = paging(query.page, query.pageSize);
    if (caller?.tenantId && query.tenantId && query.tenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only list tenant ${caller.tenantId}`, { tenant_id: query.tenantId });
    }
    const sortBy = query.sortBy || "created_at";
    if (!SORT_FIELDS.includes(sortBy)) {
      throw apiError("INVALID_REQUEST", `cannot sort by "${sortBy}"`, { violations: [{ field: "sort_by", description: `one of ${SORT_FIELDS.join(", ")}` }] });
    }
    const tenantId = caller?.tenantId ?? (query.tenantId || undefined);
    const filter: ListFilter = {
      ...(tenantId ? { tenantId } : {}),
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(query.qosTier !== undefined ? { qosTier: query.qosTier } : {}),
    };
    const [rows, total] = await this.deps.replications.list(filter, sortBy, query.descending, (page - 1) * pageSize, pageSize);
    return { rows, total, page, pageSize };
  }

  /**
   * Changes the configuration fields `updateMask` names (proto paths, with or
   * without the leading "config.": "qos_tier", "config.row_filter.enabled").
   */
  async update(caller: Caller | undefined, id: string, patch: ReplicationConfig | undefined, updateMask: string[]): Promise<ReplicationRow> {
    const row = await this.get(caller, id);
    await this.refuseDuringFailover(row, "FAILOVER_IN_PROGRESS");
    const paths = updateMask.map((p) => p.replace(/^config\./, ""));
    if (paths.length === 0 || paths.some((p) => p === "config")) {
      throw apiError("INVALID_REQUEST", "name the fields to change (a PATCH body holds only them)", {
        violations: [{ field: "update_mask", description: "no config fields to change" }],
      });
    }
    if (row.desired === "stopped") throw conflict(row, "update");
    const config = clone(ReplicationConfigSchema, row.config);
    const v = new Violations();
    for (const path of paths) {
      const [head] = path.split(".");
      if (!UPDATABLE.includes(head!)) v.add(`config.${path}`, "cannot be changed on an existing replication");
      else setPath(config, patch ?? create(ReplicationConfigSchema), path);
    }
    checkConfig(config, v);
    v.check();
    const sourceConfig = await this.deps.connections.clientConfig(row.source.connectionId, row.source.database);
    if (!sourceConfig) throw apiError("CONFLICT", "the replication's source connection no longer exists", { connection_id: row.source.connectionId });
    // QoS, lag threshold, priority and automatic failover (read by the monitor at its next pass) apply live. The codec, the tables and
    // the rows restart the pipeline, which copies again just the tables its
    // publication gains or changes (the engine). New transforms rewrite every
    // row already on the target: everything is copied again.
    const heads = paths.map((p) => p.split(".")[0]!);
    const change = heads.includes("transforms")
      ? "resync"
      : heads.some((h) => ["table_filter", "row_filter", "compression", "encryption"].includes(h))
        ? "restart"
        : "live";
    if (heads.some((h) => ["table_filter", "row_filter", "transforms"].includes(h))) {
      await this.checkAgainstSource(caller, row.id, row.tenantId, sourceConfig, row.source.schema, config);
    }
    const updated = (await this.deps.replications.updateConfig(id, config, change))!;
    // After the change committed; an event log that fails now does not undo it (the change is in the audit log too).
    await this.deps.events
      ?.record({
        replicationId: id,
        tenantId: row.tenantId,
        type: "ConfigChanged",
        severity: "Info",
        message: `configuration changed: ${paths.join(", ")} (${change === "live" ? "applied live" : change === "restart" ? "the pipeline restarts" : "everything is copied again"})`,
        details: { fields: paths.join(","), applied: change, by: caller?.subject ?? "" },
      })
      .catch(() => undefined);
    // Live changes reach the running pipeline now; others restart it (its owner sees the new generation).
    if (change === "live") await this.deps.orchestrator.reconfigure(updated);
    else await this.deps.orchestrator.signal(id);
    return updated;
  }

  /**
   * Stopped first, its slot dropped wherever it ran, and only then deleted:
   * a drop that fails leaves a stopped replication to delete again, never a
   * slot nobody knows of holding the source's WAL.
   */
  async delete(caller: Caller | undefined, id: string, cleanupTarget: boolean): Promise<void> {
    const row = await this.get(caller, id);
    // Spec §2.1.5: a replication in failover cannot be deleted (409).
    await this.refuseDuringFailover(row, "CONFLICT");
    if (row.desired !== "stopped") await this.deps.replications.setDesired(id, "stopped", "Stopped");
    await this.end(row, cleanupTarget);
    await this.deps.replications.markDeleted(id);
    await this.deps.orchestrator.signal(id);
  }

  // Waits for whichever server ran it to let go, then drops its slot and publication (see Orchestrator.end).
  private async end(row: ReplicationRow, cleanupTarget = false): Promise<void> {
    const outcome = await this.deps.orchestrator.end(row, { cleanupTarget });
    if (outcome === "superseded") throw apiError("CONFLICT", "the replication was started again meanwhile", { replication_id: row.id });
    if (outcome === "unreachable" && cleanupTarget) {
      throw apiError("CONFLICT", "a connection of the replication no longer exists: its target cannot be cleaned up; delete it without cleanup_target", { replication_id: row.id });
    }
    if (outcome === "busy") {
      throw apiError("SERVICE_UNAVAILABLE", "the server running the replication has not let it go yet; retry shortly", { replication_id: row.id }, 5);
    }
  }

  /** Starts (or resumes, or restarts from Error) a replication; says what the start does, decided before it. */
  async start(caller: Caller | undefined, id: string, request: StartRequest): Promise<{ row: ReplicationRow; plan: StartPlan; before: ReplicationRow }> {
    const before = await this.get(caller, id);
    await this.refuseDuringFailover(before, "FAILOVER_IN_PROGRESS");
    if (request.initialSyncParallelism < 0 || request.initialSyncParallelism > 64) {
      throw apiError("VALIDATION_ERROR", "initial_sync_parallelism must be from 1 to 64", { field: "initial_sync_parallelism" });
    }
    const fromCheckpoint = request.fromCheckpoint || "auto";
    if (fromCheckpoint !== "auto" && !LSN.test(fromCheckpoint)) {
      throw apiError("VALIDATION_ERROR", 'from_checkpoint must be "auto" or an LSN (decimal or X/Y)', { field: "from_checkpoint" });
    }
    const options: StartOptions = {
      fromCheckpoint,
      ...(request.initialSyncParallelism ? { initialSyncParallelism: request.initialSyncParallelism } : {}),
    };
    const plan = startPlan(before, fromCheckpoint);
    return { row: await this.transition(before, "start", options), plan, before };
  }

  async control(caller: Caller | undefined, id: string, action: "pause" | "stop"): Promise<ReplicationRow> {
    const row = await this.get(caller, id);
    await this.refuseDuringFailover(row, "FAILOVER_IN_PROGRESS");
    return this.transition(row, action);
  }

  // Spec §6.2: a replication is not modified by request while a failover of it runs (the failover changes it itself).
  private async refuseDuringFailover(row: ReplicationRow, code: "CONFLICT" | "FAILOVER_IN_PROGRESS"): Promise<void> {
    const active = await this.deps.failovers?.active(row.id);
    if (active) throw inProgress(row.id, active.id, code);
    // A migration's carrier is the migration's to start, stop and delete while it runs.
    const migration = await this.deps.migrations?.activeByReplication(row.id);
    if (migration) {
      throw apiError("CONFLICT", `replication ${row.id} carries migration ${migration.id}, which is in progress: cancel the migration instead`, {
        replication_id: row.id,
        migration_id: migration.id,
      });
    }
  }

  private async transition(row: ReplicationRow, action: "start" | "pause" | "stop", options: StartOptions = {}): Promise<ReplicationRow> {
    const { id } = row;
    const transition = TRANSITIONS[action];
    if (!transition.from.includes(row.desired)) throw conflict(row, action);
    // Nothing to do — but a stop drops the slot again (a drop that failed before); a start restarts only from Error.
    if (row.desired === transition.to && (action !== "start" || row.status !== "Error")) {
      if (action === "stop") await this.end(row);
      return row;
    }
    // A pending resync (the tables, filters or transforms changed) survives a plain start.
    if (action === "start" && row.startOptions.fromCheckpoint === "resync" && (options.fromCheckpoint ?? "auto") === "auto") {
      options = { ...options, fromCheckpoint: "resync" };
    }
    const status = action === "start" ? "Initializing" : action === "pause" ? "Paused" : "Stopped";
    // A start runs a new pipeline: from Error, its owner lets the failed one go when the generation moves.
    const updated = (await this.deps.replications.setDesired(id, transition.to, status, action === "start" ? options : undefined, action === "start"))!;
    // Stored as stopped first, so that whichever server runs it lets it go; then its slot is dropped.
    if (action === "stop") await this.end(updated);
    else await this.deps.orchestrator.signal(id);
    return (await this.deps.replications.get(id)) ?? updated;
  }

  /**
   * A source or target as the request names it, completed from its
   * connection, if the tenant may use it there: its own connection, or the
   * operator's within the tenant's grant. Another tenant's connection reads
   * exactly as one that does not exist.
   */
  private async endpoint(field: string, info: ConnectionInfo | undefined, tenantId: string, v: Violations): Promise<ConnectionInfo> {
    const out = create(ConnectionInfoSchema, info ?? {});
    v.bounded(`${field}.database`, out.database, 63, "bytes");
    v.bounded(`${field}.schema`, out.schema, 63, "bytes");
    v.bounded(`${field}.region`, out.region, 64);
    if (!v.uuid(`${field}.connection_id`, out.connectionId) || !tenantId) return out;
    const access = await accessFor(this.deps.connections, this.deps.grants, tenantId, out.connectionId);
    if (!access) {
      v.add(`${field}.connection_id`, `no connection ${out.connectionId} that tenant ${tenantId} may use`);
      return out;
    }
    out.database ||= access.row.database || "postgres";
    out.schema ||= "public";
    out.region ||= access.row.region;
    if (access.grant && !permits(access.grant.databases, out.database)) {
      v.add(`${field}.database`, `database "${out.database}" is outside tenant ${tenantId}'s grant on connection ${out.connectionId}`);
    }
    if (access.grant && !permits(access.grant.schemas, out.schema)) {
      v.add(`${field}.schema`, `schema "${out.schema}" is outside tenant ${tenantId}'s grant on connection ${out.connectionId}`);
    }
    const system = systemSchema(out.schema);
    if (system) v.add(`${field}.schema`, `"${out.schema}" is ${system}: a replication neither reads nor writes it`);
    return out;
  }

  // The pg configuration of an endpoint; its connection may have gone since the checks above.
  private async clientConfig(info: ConnectionInfo): Promise<pg.ClientConfig> {
    const config = await this.deps.connections.clientConfig(info.connectionId, info.database);
    if (!config) throw apiError("CONFLICT", `connection ${info.connectionId} was removed meanwhile`, { connection_id: info.connectionId });
    return config;
  }

  private async checkAgainstSource(caller: Caller | undefined, id: string, tenantId: string, source: pg.ClientConfig, schema: string, config: ReplicationConfig) {
    let client: pg.Client;
    try {
      client = await connect(source);
    } catch (e) {
      throw connectionFailed(caller, "the source", e, { field: "source" });
    }
    try {
      return await validate(client, `heliosdb_${id.replace(/-/g, "")}`, schema, tenantId, config, {
        keys: this.deps.keys,
        ...(this.deps.vault ? { vault: this.deps.vault } : {}),
      });
    } catch (e) {
      if (e instanceof PreflightError) {
        throw apiError("VALIDATION_ERROR", "the source cannot be replicated as configured", {
          problems: e.problems.map((p) => ({ code: p.code, message: p.message })) as unknown as JsonObject[],
        });
      }
      if (e instanceof RowFilterError) throw apiError("VALIDATION_ERROR", e.message, { field: "config.row_filter.expression" });
      throw e;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/** A failover's reverse replication's id: derived from the failover's (a UUID of version 8, RFC 9562's custom one). */
export function reverseId(failoverId: string): string {
  return derivedId(`heliosdb reverse replication of failover ${failoverId}`);
}

function derivedId(seed: string): string {
  const h = createHash("sha256").update(seed).digest("hex");
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A migration's carrier replication's id: derived from the migration's (a UUID of version 8). */
export function carrierId(migrationId: string): string {
  return derivedId(`heliosdb carrier replication of migration ${migrationId}`);
}

/** What an update cannot change, and what does it instead (REST answers these with VALIDATION_ERROR). */
export const NOT_UPDATABLE: Record<string, Record<string, string>> = {
  "ReplicationService.UpdateReplication": {
    source: "cannot be changed by update: move the tenant with a migration (POST /v1/migrations)",
    target: "cannot be changed by update: move the tenant with a migration (POST /v1/migrations)",
  },
};

/** The config fields an update may change (spec §2.1.4 and the other non-structural settings). */
const UPDATABLE = ["qos_tier", "max_lag_seconds", "priority", "table_filter", "row_filter", "transforms", "compression", "encryption", "automatic_failover"];

/**
 * What a start does, decided from the replication before it: nothing (it
 * runs already, not in Error), stream from the requested position, copy
 * everything (never streamed, or a resync is pending after a change of
 * tables, filters or transforms), or resume from its checkpoint.
 */
export type StartPlan = "unchanged" | "position" | "initial_sync" | "checkpoint";

export function startPlan(row: ReplicationRow, fromCheckpoint: string): StartPlan {
  if (row.desired === "running" && row.status !== "Error") return "unchanged";
  if (fromCheckpoint !== "auto" && fromCheckpoint !== "resync") return "position";
  if (fromCheckpoint === "resync" || row.startOptions.fromCheckpoint === "resync" || !row.figures?.lastCheckpoint) return "initial_sync";
  return "checkpoint";
}

/** The longest countdown an automatic failover may be configured with (a day). */
export const MAX_SOURCE_UNREACHABLE_SECONDS = 86_400;

function checkConfig(config: ReplicationConfig, v: Violations): void {
  if (config.maxLagSeconds < 0) v.add("config.max_lag_seconds", "must be 0 or more");
  if (config.priority < 0 || config.priority > 100) v.add("config.priority", "must be from 0 to 100");
  if (config.encryption?.enabled && config.encryption.algorithm && config.encryption.algorithm !== "AES256GCM") {
    v.add("config.encryption.algorithm", `unsupported: "${config.encryption.algorithm}"; AES256GCM is supported`);
  }
  if (config.rowFilter?.enabled && !config.rowFilter.expression.trim()) v.add("config.row_filter.expression", "required when the row filter is enabled");
  // 0 is the contract's default (30 s); a day bounds a countdown nobody would mean (controller/failover/automatic.ts).
  const wait = config.automaticFailover?.sourceUnreachableSeconds ?? 0;
  if (wait < 0 || wait > MAX_SOURCE_UNREACHABLE_SECONDS) {
    v.add("config.automatic_failover.source_unreachable_seconds", `must be from 0 (the default, 30) to ${MAX_SOURCE_UNREACHABLE_SECONDS}`);
  }
}

function conflict(row: ReplicationRow, action: string) {
  return apiError("CONFLICT", `cannot ${action} a replication that is ${row.status}`, {
    replication_id: row.id,
    current_status: row.status,
    requested: action,
  });
}

// Copies the field at a proto-name `path` ("row_filter.enabled") from `from`
// into `into`, creating the messages on the way; unset in `from` clears it.
function setPath(into: ReplicationConfig, from: ReplicationConfig, path: string): void {
  let a: ReflectMessage = reflect(ReplicationConfigSchema, into);
  let b: ReflectMessage | undefined = reflect(ReplicationConfigSchema, from);
  const names = path.split(".");
  for (const name of names.slice(0, -1)) {
    const field = a.desc.fields.find((f) => f.name === name);
    if (field?.fieldKind !== "message") return;
    b = b?.isSet(field) ? (b.get(field) as ReflectMessage) : undefined;
    if (!a.isSet(field)) a.set(field, reflect(field.message, create(field.message)));
    a = a.get(field) as ReflectMessage;
  }
  const leaf = a.desc.fields.find((f) => f.name === names[names.length - 1]);
  if (!leaf) return;
  if (b?.isSet(leaf)) a.set(leaf, b.get(leaf) as never);
  else a.clear(leaf);
}

// The row if the caller may see it: another tenant's answers exactly as a missing one, details included.
function visible(caller: Caller | undefined, id: string, row: ReplicationRow | undefined): ReplicationRow {
  if (!row || (caller?.tenantId && caller.tenantId !== row.tenantId)) throw apiError("NOT_FOUND", `no replication ${id}`, { replication_id: id });
  return row;
}
