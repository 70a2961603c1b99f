// Automatic failover (ReplicationConfig.automatic_failover): the health
// monitor that fails a replication over by itself when its source has been
// unreachable for `source_unreachable_seconds` and its replica is healthy.
//
// Who decides: only the server that runs the replication, under its lease —
// the one whose pipeline sees the source fail. Each pass it looks at the
// replications it runs with automatic failover enabled. The source counts
// as unreachable when both say so: the pipeline failed on the source side
// (a stream that broke), and a probe of the source gets no answer from
// PostgreSQL (a source that answers, even to refuse a login or the stream,
// is up: its clients may be writing there, and no failover would mend it). The countdown runs from this
// server's first such observation; an answer from the source, or the
// pipeline streaming again, cancels it. A server that takes the lease over
// counts again from its own first observation: never sooner than asked.
//
// What it triggers: the manual path (FailoverController.trigger), with
// trigger Automatic and `force` — because the source is down, and a
// failover without its source is exactly what force means there:
// ValidateReplicaHealth would refuse a replication in Error, and
// StopReplication cannot fence nor drain; with force it stops at the last
// checkpoint the replica applied and records the loss window, as for a
// forced manual failover. Force would also waive the checks of the replica
// itself, so this monitor makes them before it triggers (the replica
// answers, has finished its initial sync, holds the tenant's data whole,
// and its last measured lag is within max_lag_seconds): only what the
// source's absence makes impossible is waived. Should the source answer
// again by StopReplication, that step fences and drains it as usual.
//
// At most one failover per replication: the store admits one running
// failover of a replication (a second trigger is 409), the monitor tries
// once per outage, and a replication that failed over is Stopped (it no
// longer runs here, so nothing watches it).
import { ConnectError } from "@connectrpc/connect";
import { probeConnection, type ObservedFigures } from "@heliosdb/replication-engine";
import type { AutomaticFailover } from "@heliosdb/replication-proto";
import pg from "pg";
import type { ConnectionStore } from "../../store/connections";
import type { EventStore } from "../../store/events";
import type { FailoverRow, FailoverStore } from "../../store/failovers";
import type { ReplicationRow, ReplicationStore } from "../../store/replications";
import { apiErrorOf } from "../../transport/errors";
import type { TriggerRequest } from "../failovers";
import { replicaData } from "./replica-data";

/** The contract's default countdown when `source_unreachable_seconds` is 0. */
export const DEFAULT_SOURCE_UNREACHABLE_SECONDS = 30;

export interface AutomaticFailoverDeps {
  /** The replications this server runs now, with their live figures (Orchestrator.ownedFigures). */
  owned: () => { row: ReplicationRow; figures: ObservedFigures }[];
  /** Whether this server holds the replication's lease now (read from the store, not remembered). */
  holdsLease: (replicationId: string) => Promise<boolean>;
  replications: ReplicationStore;
  connections: ConnectionStore;
  failovers: FailoverStore;
  events: EventStore;
  /** The manual path's trigger (FailoverController.trigger, as the server). */
  trigger: (request: TriggerRequest) => Promise<FailoverRow>;
  /** How long the source and the target may take to answer a probe (default 5000 ms). */
  probeTimeoutMs?: number;
  log?: (message: string) => void;
}

// One outage of one replication's source, as this server saw it.
interface Outage {
  since: Date;
  /** Why the last probe got no answer. */
  why: string;
  /** The reason the failover was last held back (said once per reason). */
  held?: string;
  /** The failover this outage triggered (or found running): never a second one for it. */
  failoverId?: string;
}

export class AutomaticFailoverMonitor {
  private readonly outages = new Map<string, Outage>();
  private timer?: NodeJS.Timeout;
  private passing?: Promise<void>;
  private stopped = false;

  constructor(private readonly deps: AutomaticFailoverDeps) {}

  /** Passes every `intervalMs` (the orchestrator's tick), one at a time. */
  start(intervalMs: number): void {
    const loop = () => {
      this.passing = this.pass().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, intervalMs);
      });
    };
    this.timer = setTimeout(loop, intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.passing;
  }

  /** Looks at each replication this server runs with automatic failover enabled; never rejects. */
  async pass(): Promise<void> {
    const watched = this.deps.owned().filter(({ row }) => row.config.automaticFailover?.enabled);
    const ids = new Set(watched.map(({ row }) => row.id));
    // No longer run here (stopped, failed over, its lease gone): its next holder keeps its own countdown.
    for (const id of this.outages.keys()) if (!ids.has(id)) this.outages.delete(id);
    await Promise.all(
      watched.map(({ row, figures }) =>
        this.check(row, figures, row.config.automaticFailover!).catch((e) => this.deps.log?.(`automatic failover of ${row.id}: ${(e as Error).message}`)),
      ),
    );
  }

  private async check(row: ReplicationRow, figures: ObservedFigures, config: AutomaticFailover): Promise<void> {
    const outage = this.outages.get(row.id);
    const failing = figures.status === "Error" && figures.retry?.side === "source";
    const probe = failing ? await this.probe(row.source) : undefined;
    // A source that answers, even to refuse us, is up: its clients may be writing there.
    const why = probe && !probe.answered ? probe.why : undefined;
    if (!why) {
      // The outage is over; one whose failover ran (and rolled back) ends too: a new outage may try again.
      if (outage) this.outages.delete(row.id);
      if (outage && !outage.failoverId) {
        await this.record(row, "AutomaticFailoverCancelled", "Info", `the source answers again: the automatic failover is cancelled (unreachable since ${outage.since.toISOString()})`, {
          source_unreachable_since: outage.since.toISOString(),
        });
      }
      return;
    }
    const seconds = config.sourceUnreachableSeconds || DEFAULT_SOURCE_UNREACHABLE_SECONDS;
    if (!outage) {
      const since = new Date();
      this.outages.set(row.id, { since, why });
      await this.record(row, "AutomaticFailoverPending", "Warning", `the source is unreachable (${why}): automatic failover in ${seconds} s unless it answers again`, {
        source_unreachable_since: since.toISOString(),
        source_unreachable_seconds: String(seconds),
        reason: why,
      });
      return;
    }
    outage.why = why;
    if (outage.failoverId || Date.now() - outage.since.getTime() < seconds * 1000) return;
    // Only the holder of the lease decides; one that lost it stops running the replication at its next pass.
    if (!(await this.deps.holdsLease(row.id))) return;
    // As stored now: stopped, or opted out, meanwhile (a PATCH reaches the pipeline's copy a pass later).
    const fresh = await this.deps.replications.get(row.id);
    const now = fresh?.config.automaticFailover;
    if (fresh?.desired !== "running" || !now?.enabled) return;
    const running = await this.deps.failovers.active(row.id);
    if (running) {
      outage.failoverId = running.id;
      return;
    }
    const unfit = await this.unfit(fresh, figures);
    if (unfit.length > 0) return this.hold(row, outage, `the replica is not fit to be promoted: ${unfit.join("; ")}`);
    const reason = `automatic failover: the source has been unreachable since ${outage.since.toISOString()} (${Math.floor((Date.now() - outage.since.getTime()) / 1000)} s; ${why})`;
    try {
      const failover = await this.deps.trigger({
        replicationId: row.id,
        reason: reason.slice(0, 1000),
        force: true,
        updateRouting: now.updateRouting ?? true,
        // The old primary is away: a reverse replication would copy the replica over what it committed after the checkpoint.
        reverseReplication: false,
        trigger: "Automatic",
      });
      outage.failoverId = failover.id;
      this.deps.log?.(`automatic failover of replication ${row.id}: failover ${failover.id} started (${reason})`);
    } catch (e) {
      const detail = e instanceof ConnectError ? apiErrorOf(e) : undefined;
      const other = detail?.details?.failover_id;
      // Another failover of it started meanwhile (409): that one is the failover of this outage.
      if (typeof other === "string" && other) outage.failoverId = other;
      else await this.hold(row, outage, `the failover was refused: ${detail?.message ?? (e as Error).message}`);
    }
  }

  // What force would waive but an automatic failover must not: the replica's own health.
  private async unfit(row: ReplicationRow, figures: ObservedFigures): Promise<string[]> {
    const problems: string[] = [];
    const target = await this.probe(row.target);
    if (target) problems.push(`the target does not take a session: ${target.why}`);
    if (!figures.lastCheckpoint) problems.push("the replica has not finished its initial sync");
    const data = replicaData(row.config);
    if (data.rewritten.length > 0 || data.partial.length > 0) problems.push(`the replica does not hold the tenant's data as written (${[...data.rewritten, ...data.partial].join("; ")})`);
    const max = row.config.maxLagSeconds;
    if (max > 0 && figures.lagSeconds > max) problems.push(`its last measured lag, ${figures.lagSeconds.toFixed(1)} s, is above max_lag_seconds ${max}`);
    return problems;
  }

  // Said once per reason; looked at again every pass (a target back, a routing put right).
  private async hold(row: ReplicationRow, outage: Outage, why: string): Promise<void> {
    if (outage.held === why) return;
    outage.held = why;
    await this.record(row, "AutomaticFailoverHeld", "Warning", `the source is unreachable, but no automatic failover: ${why}`, {
      source_unreachable_since: outage.since.toISOString(),
      reason: why,
    });
  }

  /** Undefined when the database takes a session and a query within the probe timeout; else why not, and whether PostgreSQL answered. */
  private async probe(info: ReplicationRow["source"]): Promise<{ why: string; answered: boolean } | undefined> {
    const config = await this.deps.connections.clientConfig(info.connectionId, info.database);
    if (!config) return { why: `its connection ${info.connectionId} no longer exists`, answered: true };
    const ms = this.deps.probeTimeoutMs ?? 5_000;
    try {
      await probeConnection({ ...config, connectionTimeoutMillis: ms, query_timeout: ms });
      return undefined;
    } catch (e) {
      const code = (e as { code?: string }).code;
      return { why: `${(e as Error).message || "no answer"}${code ? ` (${code})` : ""}`, answered: answeredBy(e) };
    }
  }

  private async record(row: ReplicationRow, type: string, severity: string, message: string, details: Record<string, string>): Promise<void> {
    this.deps.log?.(`replication ${row.id}: ${message}`);
    await this.deps.events
      .record({ replicationId: row.id, tenantId: row.tenantId, type, severity, message, details })
      .catch((e) => this.deps.log?.(`automatic failover of ${row.id}: could not record an event: ${(e as Error).message}`));
  }
}

/**
 * Whether a failed probe was answered by a PostgreSQL that is up: a refused
 * login, a database gone, too many sessions. Not down, then — its clients
 * may still be writing there, and a failover (which cannot fence it) would
 * split the tenant. No answer at all (refused, reset, timed out), or a server
 * shutting down, starting up or in recovery from a crash (SQLSTATE class
 * 57P), or a connection exception (class 08), is a source that is away.
 */
export function answeredBy(error: unknown): boolean {
  if (!(error instanceof pg.DatabaseError) || !error.code) return false;
  return !error.code.startsWith("57P") && !error.code.startsWith("08");
}
