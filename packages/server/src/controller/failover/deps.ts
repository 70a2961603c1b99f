// What the failover's steps share: the stores and the orchestrator they act
// through, the job's state as the steps save it (so that whichever server
// runs a step next knows what the steps before it did), and the two databases.
import type { JsonObject } from "@bufbuild/protobuf";
import { probeConnection, type SequencePlan, type TenantDatabase } from "@heliosdb/replication-engine";
import type { Orchestrator } from "../../orchestrator/orchestrator";
import type { StepContext } from "../../orchestrator/job-kind";
import type { ConnectionStore } from "../../store/connections";
import type { EventStore } from "../../store/events";
import type { FailoverStore } from "../../store/failovers";
import type { ReplicationRow, ReplicationStore } from "../../store/replications";
import type { RoutingStore } from "../../store/routing";
import type { JobSessions } from "../cutover/sessions";
import type { CutoverState } from "../cutover/state";
import type { Verified } from "../cutover/verify-at-switch";

/** Where a test may hold a step (FailoverOptions.pause): each is named for what has just happened. */
export type PausePoint = "validated" | "fenced" | "drained" | "stopped" | "promoted" | "switched";

export interface FailoverOptions {
  /** How long the fence may wait for writers in flight (default 5000 ms). */
  fenceLockTimeoutMs?: number;
  /** How long StopReplication waits for the target to apply the fence's final LSN (default 60,000 ms). */
  drainTimeoutMs?: number;
  /** How long a database may take to answer a reachability probe (default 5000 ms). */
  probeTimeoutMs?: number;
  /**
   * How long ValidateReplicaHealth waits for a replication that is starting,
   * or whose figures are not live (its server died and another takes it
   * over), to stream again before it refuses (default 30,000 ms).
   */
  settleMs?: number;
  /** Test support: called at named points inside the steps, so that a test can hold a step there (and kill the server). */
  pause?: (point: PausePoint, failoverId: string, signal: AbortSignal) => Promise<void>;
}

export interface FailoverDeps extends FailoverOptions {
  replications: ReplicationStore;
  failovers: FailoverStore;
  routing: RoutingStore;
  connections: ConnectionStore;
  events: EventStore;
  /** The orchestrator the job runs under (made after the kind it runs). */
  orchestrator: () => Orchestrator;
  /** The replication from the new primary back to the old one, by the replication controller's rules. */
  reverse: {
    /** Creates it (its id derived from the failover's: a second call finds the first's) and starts it. */
    create(forward: ReplicationRow, failoverId: string, tables: string[]): Promise<ReplicationRow>;
    /** Stops and deletes it (a rollback). */
    remove(id: string): Promise<void>;
  };
  log?: (message: string) => void;
  /** Sessions kept for each failover from before its fence to its switch (failoverKind makes them). */
  sessions?: JobSessions;
}

/**
 * The job's state: the request, then what each step did, saved as it
 * happened (the fence, drain, stop, promotion and switch as every cutover
 * saves them: cutover/state.ts). Positions are LSNs in decimal, times ISO text.
 */
export interface FailoverState extends CutoverState {
  replicationId: string;
  tenantId: string;
  force: boolean;
  updateRouting: boolean;
  reverseReplication: boolean;
  /** What the operator wanted of the replication before the failover stopped it (a rollback restores it). */
  priorDesired?: string;
  /** Whether StopReplication found the source (then it fenced and drained it; else it stopped at the checkpoint). */
  sourceReachable?: boolean;
  /** With the source unreachable: where the replica stopped, and since when the source was away. */
  lossWindow?: { lsn: string; timestamp: string; transactionId: number; sourceUnreachableSince: string };
  reverseReplicationId?: string;
  /** ValidateReplicaHealth found the target taking writes before the fence (PromoteReplica then checks only a target it unfences). */
  targetReady?: boolean;
  /** Column defaults ValidateReplicaHealth could not set before the fence (PromoteReplica sets them; at 0 it only positions sequences). */
  defaultsLeft?: number;
  /** Which target sequence takes each source sequence's position (ValidateReplicaHealth's plan; PromoteReplica sets them). */
  sequencePlan?: SequencePlan;
  /** The verification after the switch (the target as the switch found it against the source at the fence). */
  verification?: Verified;
}

export type FailoverContext = StepContext;

export function stateOf(ctx: { state: JsonObject } | { state: Readonly<JsonObject> }): FailoverState {
  return ctx.state as unknown as FailoverState;
}

export function save(ctx: FailoverContext, patch: Partial<FailoverState>): Promise<void> {
  return ctx.save(patch as JsonObject);
}

/** The replication failed over (deleted ones are refused while a failover runs, so it is there). */
export async function replicationOf(deps: FailoverDeps, id: string): Promise<ReplicationRow> {
  const row = await deps.replications.get(id);
  if (!row) throw new Error(`replication ${id} no longer exists`);
  return row;
}

/** The replication's source and target as the engine's cutover primitives take them. */
export async function databasesOf(deps: FailoverDeps, row: ReplicationRow): Promise<{ source: TenantDatabase; target: TenantDatabase }> {
  const side = async (info: ReplicationRow["source"], which: string): Promise<TenantDatabase> => {
    const connection = await deps.connections.clientConfig(info.connectionId, info.database);
    if (!connection) throw new Error(`the ${which}'s connection ${info.connectionId} no longer exists`);
    return { connection, schema: info.schema || "public" };
  };
  const [source, target] = await Promise.all([side(row.source, "source"), side(row.target, "target")]);
  return { source, target };
}

/**
 * The replication's source and target with sessions of this failover's own,
 * opened at the first ask and lent to every later step (cutover/sessions.ts):
 * from the fence to the switch, no step sets one up. Only with the source
 * answering (the sessions open on both sides).
 */
export async function lentDatabasesOf(deps: FailoverDeps, ctx: FailoverContext, row: ReplicationRow): Promise<{ source: TenantDatabase; target: TenantDatabase }> {
  if (!deps.sessions) return databasesOf(deps, row);
  return deps.sessions.lend(ctx.jobId, () => databasesOf(deps, row));
}

/** Undefined when the database answers a query within the probe timeout; else why not. */
export async function unreachable(deps: FailoverDeps, db: TenantDatabase): Promise<string | undefined> {
  const ms = deps.probeTimeoutMs ?? 5_000;
  try {
    await probeConnection({ ...db.connection, connectionTimeoutMillis: ms, query_timeout: ms });
    return undefined;
  } catch (e) {
    const code = (e as { code?: string }).code;
    return `${(e as Error).message || "no answer"}${code ? ` (${code})` : ""}`;
  }
}

/** Holds the step at `point` when a test asked to. */
export async function pause(deps: FailoverDeps, point: PausePoint, ctx: FailoverContext): Promise<void> {
  if (deps.pause) await deps.pause(point, ctx.jobId, ctx.signal);
}
