// What the migration's phases share: the stores and the orchestrator they act
// through, the job's state as the phases save it (so that whichever server
// runs a phase next knows what the ones before it did), and the two databases.
import type { JsonObject } from "@bufbuild/protobuf";
import type { TenantDatabase } from "@heliosdb/replication-engine";
import type { ConnectionInfo } from "@heliosdb/replication-proto";
import type { Orchestrator } from "../../orchestrator/orchestrator";
import type { StepContext } from "../../orchestrator/job-kind";
import type { Verified } from "../cutover/verify-at-switch";
import type { ConnectionStore } from "../../store/connections";
import type { EventStore } from "../../store/events";
import type { ReplicationRow, ReplicationStore } from "../../store/replications";
import type { RoutingStore } from "../../store/routing";
import type { MigrationRow, MigrationStore } from "../../store/tenant-migrations";
import type { CutoverState } from "../cutover/state";

/** Where a test may hold a phase (MigrationOptions.pause): each is named for what has just happened. */
export type MigrationPausePoint = "copying" | "caught-up" | "fenced" | "drained" | "switched";

export interface MigrationOptions {
  /** How long the fence may wait for writers in flight (default 5000 ms). */
  fenceLockTimeoutMs?: number;
  /** How long the cutover waits for the target to apply the fence's final LSN (default 60,000 ms). */
  drainTimeoutMs?: number;
  /** How often a phase reads its replication's figures (default 250 ms). */
  pollMs?: number;
  /** How long the lag must stay under the threshold before CDCCatchup is done (default 2000 ms). */
  holdMs?: number;
  /** Test support: called at named points inside the phases, so that a test can hold one there (and kill the server). */
  pause?: (point: MigrationPausePoint, migrationId: string, signal: AbortSignal) => Promise<void>;
}

export interface MigrationDeps extends MigrationOptions {
  migrations: MigrationStore;
  replications: ReplicationStore;
  routing: RoutingStore;
  connections: ConnectionStore;
  events: EventStore;
  /** The orchestrator the job runs under (made after the kind it runs). */
  orchestrator: () => Orchestrator;
  /** The replication that carries the data, by the replication controller's rules. */
  carrier: {
    /** Creates it (its id derived from the migration's: a second call finds the first's) and starts it. */
    create(m: MigrationRow, tables: string[]): Promise<ReplicationRow>;
    /** Stops and deletes it, dropping what it created on the target (a rollback). */
    remove(migrationId: string): Promise<void>;
  };
  log?: (message: string) => void;
}

/** The job's state: the request, then what each phase did, saved as it happened. */
export interface MigrationState extends CutoverState {
  tenantId: string;
  /** The carrier replication's id (derived from the migration's). */
  replicationId: string;
  /** When BulkCopy began (its copy speed is measured from then). */
  bulkCopyStartedAt?: string;
  /** Bytes the bulk copy copied, and the catalog's size of the tables it copied. */
  copiedBytes?: number;
  catalogBytes?: number;
  /** When the lag first held under the threshold. */
  caughtUpAt?: string;
  finalLagSeconds?: number;
  /** The tables dropped from the source after the switch (cleanup_source). */
  sourceCleaned?: string[];
  /** The verification after the switch (the target as the switch found it against the source at the fence). */
  verification?: Verified;
}


export type MigrationContext = StepContext;

export function stateOf(ctx: { state: JsonObject } | { state: Readonly<JsonObject> }): MigrationState {
  return ctx.state as unknown as MigrationState;
}

export function save(ctx: MigrationContext, patch: Partial<MigrationState>): Promise<void> {
  return ctx.save(patch as JsonObject);
}

/** The migration with both ends named (the controller names them before it begins). */
export async function migrationOf(deps: MigrationDeps, id: string): Promise<MigrationRow & { source: ConnectionInfo; target: ConnectionInfo }> {
  const m = await deps.migrations.get(id);
  if (!m?.source || !m.target) throw new Error(`migration ${id} does not name its source and target`);
  return m as never;
}

/** A connection as the engine's cutover primitives take it. */
export async function databaseOf(deps: MigrationDeps, info: ConnectionInfo, which: string): Promise<TenantDatabase> {
  const connection = await deps.connections.clientConfig(info.connectionId, info.database);
  if (!connection) throw new Error(`the ${which}'s connection ${info.connectionId} no longer exists`);
  return { connection, schema: info.schema || "public" };
}

/** Holds the phase at `point` when a test asked to. */
export async function pause(deps: MigrationDeps, point: MigrationPausePoint, ctx: MigrationContext): Promise<void> {
  if (deps.pause) await deps.pause(point, ctx.jobId, ctx.signal);
}

/** An event of the migration, on its carrier replication's stream (and the tenant's). Never rejects. */
export async function emit(deps: MigrationDeps, s: MigrationState, type: string, severity: string, message: string, details: Record<string, string>): Promise<void> {
  await deps.events
    .record({ replicationId: s.replicationId, tenantId: s.tenantId, type, severity, message, details })
    .catch((e) => deps.log?.(`migration: could not record an event: ${(e as Error).message}`));
}

export const GB = 1e9;
export const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;
