// The replication kind of leased job: the engine runs every replication that
// should run, each owned through a lease row renewed by heartbeat, so that
// two servers on one control-plane database never run the same replication,
// and when a server dies another takes its replications over from their
// checkpoints once the lease expires. One replication is reconciled at a time
// (orchestrator.ts holds its key): when a control request signals it, and in
// each periodic pass.
import { equals } from "@bufbuild/protobuf";
import { ReplicationConfigSchema } from "@heliosdb/replication-proto";
import {
  Backoff,
  errorCode,
  ReplicationPipeline,
  type EngineEvent,
  type EngineStatus,
  type ObservedFigures,
} from "@heliosdb/replication-engine";
import type { ReplicationRow, StoredFigures } from "../store/replications";
import { DEFAULT_SAMPLE_INTERVAL_MS, metricsSampler, type Cadence } from "./metrics";
import type { OrchestratorDeps } from "./orchestrator";

interface Owned {
  pipeline: ReplicationPipeline;
  row: ReplicationRow;
  // Set once this node lets the pipeline go (pause, stop, restart, lease
  // lost, shutdown): the pause that follows is this node's doing, not the
  // replication's state, and is not stored as its status.
  leaving: boolean;
  // Set when it goes for a reason of this node's (a restart for a new
  // configuration, a lost lease, a shutdown): the replication did not pause,
  // so the pause's status change is not recorded as its event.
  quiet: boolean;
  // A pipeline's observations are written one after another, each reading
  // the figures when its turn comes, so that an older one never lands last.
  writes: Promise<void>;
}

const ENGINE_STATUSES: EngineStatus[] = ["Initializing", "Syncing", "Streaming", "Paused", "Stopped", "Error"];

/** What `end` found: see Orchestrator.end. */
export type EndOutcome = "ended" | "superseded" | "unreachable";

export class Replications {
  readonly owned = new Map<string, Owned>();
  // Paused replications this node watches, under their lease: a slot's
  // retained WAL stays watched (one source session) until a start, stop or
  // delete ends the watch. A node that restarts, or outlives the one that
  // paused, takes the watch over.
  private readonly paused = new Map<string, ReplicationPipeline>();
  // Replications whose pipeline could not even be made (a connection gone, a
  // destination the policy now refuses): tried again after a backoff, each
  // attempt reported, without holding up the others.
  private readonly unplaced = new Map<string, { backoff: Backoff; retryAt: number }>();
  // Signals, numbered: a pass decides by the rows it listed unless a signal
  // of the replication came after the lists were read (then it reads the row).
  private signals = 0;
  private readonly signalled = new Map<string, number>();
  // Samples of the replications this node runs, at a fixed interval (the owner's, not each pass's).
  readonly sampler: Cadence;

  constructor(
    private readonly deps: OrchestratorDeps,
    private readonly nodeId: string,
    // Runs `fn` under the replication's key (one reconciliation of it at a time).
    private readonly serial: <T>(id: string, fn: () => Promise<T>) => Promise<T>,
  ) {
    this.sampler = metricsSampler({
      intervalMs: deps.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS,
      owner: nodeId,
      owned: () => [...this.owned].filter(([, o]) => !o.leaving).map(([replicationId, o]) => ({ replicationId, figures: o.pipeline.read() })),
      samples: deps.metricSamples,
      ...(deps.log ? { log: deps.log } : {}),
    });
  }

  /** A change of the replication was stored (here or on another node): a pass under way reads its row afresh. */
  noteSignal(id: string): void {
    this.signalled.set(id, ++this.signals);
  }

  /**
   * The periodic pass: renews the leases of what this node runs or watches,
   * lets go of what should no longer run here, and takes over what should run
   * and nobody holds — in priority order, each under its key.
   */
  async pass(): Promise<void> {
    const mark = this.signals;
    const wanted = await this.deps.replications.wanted();
    const paused = await this.deps.replications.paused();
    const listed = new Map<string, ReplicationRow>([...paused, ...wanted].map((r) => [r.id, r]));
    const ids = new Set([...this.owned.keys(), ...this.paused.keys(), ...paused.map((r) => r.id), ...wanted.map((r) => r.id)]);
    for (const id of ids) {
      await this.serial(id, () => {
        const fresh = (this.signalled.get(id) ?? 0) > mark;
        return this.reconcile(id, fresh ? undefined : (listed.get(id) ?? null));
      });
    }
    for (const [id, n] of this.signalled) if (n <= mark) this.signalled.delete(id);
  }

  /**
   * Reconciles one replication on this node (under its key). `listed`: its row
   * as a pass listed it (null: in neither list, so neither running nor
   * watched); undefined: read it now.
   */
  async reconcile(id: string, listed?: ReplicationRow | null): Promise<void> {
    let row = listed === undefined ? ((await this.deps.replications.get(id)) ?? null) : listed;
    const owned = this.owned.get(id);
    if (owned) {
      const wanted = row?.desired === "running" ? row : undefined;
      // A configuration the pipeline cannot take live: stop it here; it starts again below.
      const stale = wanted !== undefined && wanted.generation !== owned.row.generation;
      if (wanted && !stale && (await this.renew(id))) {
        await this.applyLive(owned, wanted);
        await this.observe(owned);
        return;
      }
      // Paused, stopped or deleted (the control request did the rest), or the lease was lost.
      owned.leaving = true;
      owned.quiet = wanted !== undefined;
      const pausedNow = !wanted && (await this.deps.replications.get(id))?.desired === "paused";
      if (wanted || pausedNow) await owned.pipeline.pause({ watch: pausedNow }).catch(() => undefined);
      // Stopped or deleted: its slot goes too (the request waits for the lease, see end()).
      else await owned.pipeline.stop().catch((e) => this.deps.log?.(`orchestrator: could not stop ${id}: ${(e as Error).message}`));
      if (pausedNow) this.paused.set(id, owned.pipeline);
      // The final figures, as the pause or stop left them (not when another node owns it now);
      // the status stays what the request set.
      if (!wanted) await this.observe(owned, true);
      this.owned.delete(id);
      // The lease stays with the watch of a paused replication, and with a restart (below).
      if (pausedNow) return;
      if (!stale) await this.release(id);
    }
    const watch = this.paused.get(id);
    if (watch) {
      row = (await this.deps.replications.get(id)) ?? null;
      if (row?.desired === "paused" && (await this.renew(id))) {
        // The watch measures lag and retained WAL while paused: store them like a running pipeline's.
        const figures = watch.read();
        await this.deps.replications.observe(id, this.nodeId, row.generation, figures.status, figures.health, stored(figures));
        return;
      }
      // Started, stopped or deleted (or the lease lost): the watch ends (a start runs a new pipeline below).
      this.paused.delete(id);
      await watch.pause({ watch: false }).catch(() => undefined);
      await this.release(id);
    }
    if (row?.desired === "paused" && row.status === "Paused") await this.watch(id);
    else if (row?.desired === "running" && Date.now() >= (this.unplaced.get(id)?.retryAt ?? 0)) await this.take(id);
  }

  // A paused replication nobody watches: watched here once the lease is held.
  private async watch(id: string): Promise<void> {
    if (!(await this.acquire(id))) return;
    // Still paused now that the lease is held (as for a run, below).
    const row = await this.deps.replications.get(id);
    if (row?.desired !== "paused") return this.release(id);
    // A paused replication whose connection is gone is not watched; the others still are.
    const spec = await this.spec(row).catch(() => undefined);
    if (!spec) return this.release(row.id);
    const pipeline = new ReplicationPipeline(spec, this.engineDeps(row));
    await pipeline.pause({ watch: true });
    this.paused.set(row.id, pipeline);
  }

  // A replication that should run and that this node does not run: run here once the lease is held.
  private async take(id: string): Promise<void> {
    if (!(await this.acquire(id))) return;
    // As it is now that the lease is held: a stop may have come in since the list was read (and its
    // slot been dropped), and the last owner's final figures, which this run's history starts from.
    const row = await this.deps.replications.get(id);
    if (row?.desired !== "running") await this.release(id);
    else await this.run(row);
  }

  // A live change (QoS, lag threshold, priority) stored through any node reaches the pipeline here. Only a
  // row at least as new as the one the pipeline has: a list read before a change applied here is older.
  private async applyLive(owned: Owned, row: ReplicationRow): Promise<void> {
    if (row.updatedAt < owned.row.updatedAt || equals(ReplicationConfigSchema, row.config, owned.row.config)) return;
    owned.row = row;
    await owned.pipeline.reconfigure(row.config);
  }

  /** Applies a changed configuration to the pipeline, if this node runs it (under its key). */
  async reconfigure(row: ReplicationRow): Promise<void> {
    const owned = this.owned.get(row.id);
    if (!owned || owned.leaving) return;
    owned.row = row;
    await owned.pipeline.reconfigure(row.config);
  }

  /**
   * Under the lease and the key: drops what a stopped replication still holds
   * on its source (see Orchestrator.end). Undefined: the lease is not free.
   */
  async end(id: string, options: { cleanupTarget?: boolean }): Promise<EndOutcome | undefined> {
    if (!(await this.acquire(id))) return undefined;
    try {
      const now = await this.deps.replications.get(id);
      if (now?.desired !== "stopped") return "superseded";
      const spec = await this.spec(now).catch((e: unknown) => {
        if (e instanceof ConnectionGone) return undefined;
        throw e;
      });
      if (!spec) return "unreachable";
      // Its history is what the owner last observed: a pipeline it stopped already reports no change.
      const pipeline = new ReplicationPipeline(spec, this.engineDeps(now));
      await pipeline.stop();
      if (options.cleanupTarget) await pipeline.cleanup();
      return "ended";
    } finally {
      await this.release(id);
    }
  }

  /** The pipeline of a replication this node runs (not one it is letting go). */
  pipeline(id: string): ReplicationPipeline | undefined {
    const owned = this.owned.get(id);
    return owned && !owned.leaving ? owned.pipeline : undefined;
  }

  /** The live figures of a replication this node runs. */
  figures(id: string): ObservedFigures | undefined {
    const owned = this.owned.get(id);
    return owned && !owned.leaving ? owned.pipeline.read() : undefined;
  }

  ownedFigures(): { row: ReplicationRow; figures: ObservedFigures }[] {
    return [...this.owned.values()].filter((o) => !o.leaving).map((o) => ({ row: o.row, figures: o.pipeline.read() }));
  }

  /** Pauses the local pipelines (slots kept) and watches; `release`: lets their leases go for another node. */
  async shutdown(release: boolean): Promise<void> {
    await this.sampler.stop();
    for (const owned of this.owned.values()) Object.assign(owned, { leaving: true, quiet: true });
    for (const [id, { pipeline }] of this.owned) {
      await pipeline.pause({ watch: false }).catch(() => undefined);
      if (release) await this.release(id);
    }
    for (const [id, pipeline] of this.paused) {
      await pipeline.pause({ watch: false }).catch(() => undefined);
      if (release) await this.release(id);
    }
    this.owned.clear();
    this.paused.clear();
  }

  private async run(row: ReplicationRow): Promise<void> {
    let spec: Awaited<ReturnType<Replications["spec"]>>;
    try {
      spec = await this.spec(row);
    } catch (e) {
      const entry = this.unplaced.get(row.id) ?? { backoff: new Backoff(), retryAt: 0 };
      const delay = entry.backoff.next();
      entry.retryAt = Date.now() + delay;
      this.unplaced.set(row.id, entry);
      await this.record(row, {
        replicationId: row.id,
        type: "ReplicationError",
        severity: "Error",
        message: `the replication cannot run: ${(e as Error).message}; retry ${entry.backoff.attempts} in ${(delay / 1000).toFixed(1)} s`,
        details: { error_code: errorCode(e), retry_count: String(entry.backoff.attempts), retry_in_seconds: (delay / 1000).toFixed(1), retryable: "true" },
      });
      // Nobody runs it meanwhile: its health says so (no live lease).
      await this.release(row.id);
      return;
    }
    this.unplaced.delete(row.id);
    const pipeline = new ReplicationPipeline(spec, this.engineDeps(row));
    const owned: Owned = { pipeline, row, leaving: false, quiet: false, writes: Promise.resolve() };
    this.owned.set(row.id, owned);
    try {
      await pipeline.start({
        fromCheckpoint: row.startOptions.fromCheckpoint || "auto",
        ...(row.startOptions.initialSyncParallelism ? { initialSyncParallelism: row.startOptions.initialSyncParallelism } : {}),
      });
      // An explicit position or a resync applies to this start only; a restart resumes from the checkpoint.
      if (row.startOptions.fromCheckpoint && row.startOptions.fromCheckpoint !== "auto") {
        await this.deps.replications.clearStartPosition(row.id);
      }
    } catch (e) {
      // Validation failed against the source now (it passed at creation): report and let go.
      owned.leaving = true;
      await this.record(row, { replicationId: row.id, type: "ReplicationError", severity: "Error", message: (e as Error).message, details: {} });
      await this.deps.replications.observe(row.id, this.nodeId, row.generation, "Error", "Unhealthy", stored(pipeline.read()));
      await this.deps.replications.setDesired(row.id, "paused", "Error");
      this.owned.delete(row.id);
      await this.release(row.id);
      return;
    }
    await this.observe(owned);
  }

  // Stores the pipeline's figures now (in turn). `final`: the last
  // observation of a pipeline this node is letting go.
  private observe(owned: Owned, final = false): Promise<void> {
    if (owned.leaving && !final) return owned.writes;
    const write = owned.writes.then(() => this.write(owned, final));
    owned.writes = write.catch(() => undefined);
    return write;
  }

  private async write({ pipeline, row }: Owned, final: boolean): Promise<void> {
    const figures = pipeline.read();
    await this.deps.replications.observe(row.id, this.nodeId, final ? "final" : row.generation, figures.status, figures.health, stored(figures));
  }

  private engineDeps(row: ReplicationRow) {
    const lastStatus = row.figures?.status ?? row.status;
    return {
      keys: this.deps.keys,
      // What this replication was and how long it ran before this pipeline object: events and uptime go on from there.
      history: {
        // The status last observed (a start request has already set the row's own to Initializing).
        ...(ENGINE_STATUSES.includes(lastStatus as EngineStatus) ? { status: lastStatus as EngineStatus } : {}),
        uptimeSeconds: row.figures?.uptimeSeconds ?? 0,
      },
      ...(this.deps.vault ? { vault: this.deps.vault } : {}),
      ...(this.deps.pool ? { pool: this.deps.pool } : {}),
      ...(this.deps.walRetentionWarningBytes ? { walRetentionWarningBytes: this.deps.walRetentionWarningBytes } : {}),
      onEvent: (event: EngineEvent) => {
        const owned = this.owned.get(row.id);
        if (event.type === "StatusChanged" && owned?.quiet) return;
        void this.record(row, event);
        // A new status is stored at once, so that lists filtered by status agree with GET.
        if (event.type === "StatusChanged" && owned) void this.observe(owned).catch(() => undefined);
      },
    };
  }

  private async spec(row: ReplicationRow) {
    const [source, target] = await Promise.all([
      this.deps.connections.clientConfig(row.source.connectionId, row.source.database),
      this.deps.connections.clientConfig(row.target.connectionId, row.target.database),
    ]);
    if (!source || !target) throw new ConnectionGone(`a connection of replication ${row.id} no longer exists`);
    return {
      replicationId: row.id,
      tenantId: row.tenantId,
      source: { connection: source, schema: row.source.schema || "public" },
      // A failover's reverse replication writes into the old primary, whose tenant tables stay fenced against the tenant's
      // clients: its sessions there are replication sessions, which the fence's triggers do not fire for (migration 13).
      target: { connection: row.reverseOf ? { ...target, options: REPLICA_ROLE } : target, schema: row.target.schema || "public" },
      config: row.config,
    };
  }

  // Events are written one after another, in the order they happened.
  private recorded: Promise<void> = Promise.resolve();

  private record(row: ReplicationRow, event: EngineEvent): Promise<void> {
    this.recorded = this.recorded.then(() => this.insertEvent(row, event));
    return this.recorded;
  }

  private async insertEvent(row: ReplicationRow, event: EngineEvent): Promise<void> {
    await this.deps.events
      .record({ replicationId: row.id, tenantId: row.tenantId, type: event.type, severity: event.severity, message: event.message, details: event.details })
      .catch((e) => this.deps.log?.(`could not record an event of ${row.id}: ${(e as Error).message}`));
  }

  // A lease is taken when free or expired; renewed only by its owner.
  private acquire(id: string): Promise<boolean> {
    return this.deps.leases.acquire(id, this.nodeId, this.deps.leaseSeconds ?? 15);
  }

  private renew(id: string): Promise<boolean> {
    return this.deps.leases.renew(id, this.nodeId, this.deps.leaseSeconds ?? 15);
  }

  private async release(id: string): Promise<void> {
    await this.deps.leases.release(id, this.nodeId).catch(() => undefined);
  }
}

/** The startup option of a reverse replication's sessions on its target (the fenced old primary). */
export const REPLICA_ROLE = "-c session_replication_role=replica";

/** A connection a replication names was deleted (only a stopped replication lets its connections go). */
class ConnectionGone extends Error {}

/** Figures in a JSON-safe form for the control plane, stamped with when they were read. */
export function stored(f: ObservedFigures, observedAt = new Date()): StoredFigures {
  const { lastCheckpoint, statusSince, retry, ...rest } = f;
  return {
    ...rest,
    ...(retry ? { retry: { ...retry, nextAttemptAt: retry.nextAttemptAt.toISOString() } } : {}),
    ...(lastCheckpoint
      ? { lastCheckpoint: { lsn: lastCheckpoint.lsn.toString(), timestamp: lastCheckpoint.timestamp.toISOString(), transactionId: lastCheckpoint.transactionId } }
      : {}),
    statusSince: statusSince.toISOString(),
    observedAt: observedAt.toISOString(),
  };
}
