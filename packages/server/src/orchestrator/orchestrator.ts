// Runs the engine for every replication that should run, and owns each one
// through a lease row renewed by heartbeat: two servers on one control-plane
// database never run the same replication, and when a server dies another
// takes its replications over from their checkpoints once the lease expires.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  Backoff,
  errorCode,
  ReplicationPipeline,
  type EngineEvent,
  type EngineStatus,
  type KeyProvider,
  type ObservedFigures,
  type TokenVault,
  type WorkerPool,
} from "@heliosdb/replication-engine";
import type { ConnectionStore } from "../store/connections";
import type { EventStore } from "../store/events";
import type { LeaseStore } from "../store/leases";
import type { MetricSampleStore } from "../store/metric-samples";
import type { ReplicationRow, ReplicationStore, StoredFigures } from "../store/replications";
import { DEFAULT_SAMPLE_INTERVAL_MS, metricsSampler, type Cadence } from "./metrics";

export interface OrchestratorDeps {
  replications: ReplicationStore;
  connections: ConnectionStore;
  leases: LeaseStore;
  events: EventStore;
  metricSamples: MetricSampleStore;
  keys: KeyProvider;
  vault?: TokenVault;
  pool?: WorkerPool;
  /** Seconds a lease lasts without renewal (default 15). */
  leaseSeconds?: number;
  /** Milliseconds between reconciliations and lease renewals (default 2000). */
  tickMs?: number;
  /** Retained WAL above which a paused replication warns (the engine's default: 1 GiB). */
  walRetentionWarningBytes?: number;
  /** Milliseconds between two metric samples of each replication this node runs (default 10,000). */
  sampleIntervalMs?: number;
  log?: (message: string) => void;
}

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

/** Figures older than this are not live: several missed passes of their owner, and never less than 5 s. */
export function staleAfterMs(tickMs: number): number {
  return Math.max(5000, 3 * tickMs);
}

export class Orchestrator {
  readonly nodeId = randomUUID();
  private readonly owned = new Map<string, Owned>();
  // Paused replications this node watches, under their lease: a slot's
  // retained WAL stays watched (one source session) until a start, stop or
  // delete ends the watch. A node that restarts, or outlives the one that
  // paused, takes the watch over.
  private readonly paused = new Map<string, ReplicationPipeline>();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private started = false;
  // Set by shutdown: no pass starts after it (a control request's poke
  // included), so the pass it waits for is the last.
  private closing = false;
  private lastTickOk = false;
  // Samples of the replications this node runs, at a fixed interval (the owner's, not each pass's).
  private readonly sampler: Cadence;

  constructor(private readonly deps: OrchestratorDeps) {
    this.sampler = metricsSampler({
      intervalMs: deps.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS,
      owner: this.nodeId,
      owned: () => [...this.owned].filter(([, o]) => !o.leaving).map(([replicationId, o]) => ({ replicationId, figures: o.pipeline.read() })),
      samples: deps.metricSamples,
      ...(deps.log ? { log: deps.log } : {}),
    });
  }

  /** Whether the loop runs and its last pass reached the database. */
  get healthy(): boolean {
    return this.started && this.lastTickOk;
  }

  get running(): number {
    return this.owned.size;
  }

  /** How old stored figures may be and still count as live (see staleAfterMs). */
  get staleAfterMs(): number {
    return staleAfterMs(this.deps.tickMs ?? 2000);
  }

  /** Replications that should run, are in Error, or should run without a live owner (for the health check). */
  census(): Promise<{ running: number; error: number; unowned: number }> {
    return this.deps.replications.census(new Date(Date.now() - this.staleAfterMs));
  }

  start(): void {
    this.started = true;
    const loop = () => {
      void this.reconcile().finally(() => {
        if (this.started) this.timer = setTimeout(loop, this.deps.tickMs ?? 2000);
      });
    };
    loop();
    this.sampler.start();
  }

  /** Reconciles now rather than at the next tick (after a control request). */
  poke(): Promise<void> {
    return this.reconcile();
  }

  // One pass at a time: two passes at once would both find a replication
  // unowned and, holding the same lease, both start it.
  private reconcile(): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.ticking = (this.ticking ?? Promise.resolve()).then(() => this.tick());
    return this.ticking;
  }

  /**
   * The live figures of a replication this node runs. The API answers from
   * the stored figures instead (every server alike); this is for tests and
   * diagnostics.
   */
  figures(id: string): ObservedFigures | undefined {
    const owned = this.owned.get(id);
    return owned && !owned.leaving ? owned.pipeline.read() : undefined;
  }

  /** The replications this node runs now, with their live figures (for the Prometheus exposition). */
  ownedFigures(): { row: ReplicationRow; figures: ObservedFigures }[] {
    return [...this.owned.values()].filter((o) => !o.leaving).map((o) => ({ row: o.row, figures: o.pipeline.read() }));
  }

  /**
   * Ends what a replication stored as stopped (a stop or delete request did
   * that first) holds on its source, wherever it ran. Its owner — this node
   * now, another at its next pass, a dead one's lease once it lapses — stops
   * the pipeline and lets the lease go; this node then takes the lease, so
   * that nobody starts it meanwhile, and drops whatever is left (the slot of
   * a replication nobody ran: paused, in Error) and, asked to, what it
   * created on the target. "busy": the lease was not free within a lease
   * period and a pass; "superseded": a start came in meanwhile; "unreachable":
   * a connection of it was deleted since it stopped (its stop dropped the
   * slot then), so there is nothing to drop — and no target to clean up.
   */
  async end(row: ReplicationRow, options: { cleanupTarget?: boolean } = {}): Promise<"ended" | "busy" | "superseded" | "unreachable"> {
    await this.poke();
    const tickMs = this.deps.tickMs ?? 2000;
    const deadline = Date.now() + (this.deps.leaseSeconds ?? 15) * 1000 + 2 * tickMs;
    while (!(await this.acquire(row.id))) {
      if (Date.now() >= deadline) return "busy";
      await sleep(Math.min(100, tickMs));
    }
    try {
      const now = await this.deps.replications.get(row.id);
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
      await this.release(row.id);
    }
  }

  /** Applies a changed configuration to a replication this node runs. */
  async reconfigure(row: ReplicationRow): Promise<void> {
    const owned = this.owned.get(row.id);
    if (!owned) return;
    owned.row = row;
    await owned.pipeline.reconfigure(row.config);
  }

  /** Stops the loop and pauses the local pipelines (slots kept), releasing their leases for another node. */
  async shutdown(): Promise<void> {
    this.closing = true;
    this.started = false;
    clearTimeout(this.timer);
    await this.sampler.stop();
    await this.ticking;
    for (const owned of this.owned.values()) Object.assign(owned, { leaving: true, quiet: true });
    for (const [id, { pipeline }] of this.owned) {
      await pipeline.pause({ watch: false }).catch(() => undefined);
      await this.release(id);
    }
    for (const [id, pipeline] of this.paused) {
      await pipeline.pause({ watch: false }).catch(() => undefined);
      await this.release(id);
    }
    this.owned.clear();
    this.paused.clear();
  }

  private async tick(): Promise<void> {
    try {
      const wanted = new Map((await this.deps.replications.wanted()).map((r) => [r.id, r]));
      for (const [id, owned] of this.owned) {
        const row = wanted.get(id);
        // A configuration the pipeline cannot take live: stop it here; it starts again below.
        const stale = row !== undefined && row.generation !== owned.row.generation;
        if (!row || stale || !(await this.renew(id))) {
          // Paused, stopped or deleted (the control request did the rest), or the lease was lost.
          owned.leaving = true;
          owned.quiet = row !== undefined;
          const pausedNow = !row && (await this.deps.replications.get(id))?.desired === "paused";
          if (row || pausedNow) await owned.pipeline.pause({ watch: pausedNow }).catch(() => undefined);
          // Stopped or deleted: its slot goes too (the request waits for the lease, see end()).
          else await owned.pipeline.stop().catch((e) => this.deps.log?.(`orchestrator: could not stop ${id}: ${(e as Error).message}`));
          if (pausedNow) this.paused.set(id, owned.pipeline);
          // The final figures, as the pause or stop left them (not when another node owns it now);
          // the status stays what the request set.
          if (!row) await this.observe(owned, true);
          this.owned.delete(id);
          // The lease stays with the watch of a paused replication.
          if (!stale && !pausedNow) await this.release(id);
          continue;
        }
        await this.observe(owned);
      }
      for (const [id, pipeline] of this.paused) {
        const row = await this.deps.replications.get(id);
        if (row?.desired === "paused" && (await this.renew(id))) {
          // The watch measures lag and retained WAL while paused: store them like a running pipeline's.
          const figures = pipeline.read();
          await this.deps.replications.observe(id, this.nodeId, row.generation, figures.status, figures.health, stored(figures));
          continue;
        }
        // Started, stopped or deleted (or the lease lost): the watch ends (a start runs a new pipeline below).
        this.paused.delete(id);
        await pipeline.pause({ watch: false }).catch(() => undefined);
        await this.release(id);
      }
      for (const listed of await this.deps.replications.paused()) {
        if (this.paused.has(listed.id) || this.owned.has(listed.id) || !(await this.acquire(listed.id))) continue;
        // Still paused now that the lease is held (as for a run, below).
        const row = await this.deps.replications.get(listed.id);
        if (row?.desired !== "paused") {
          await this.release(listed.id);
          continue;
        }
        // A paused replication whose connection is gone is not watched; the others still are.
        const spec = await this.spec(row).catch(() => undefined);
        if (!spec) {
          await this.release(row.id);
          continue;
        }
        const pipeline = new ReplicationPipeline(spec, this.engineDeps(row));
        await pipeline.pause({ watch: true });
        this.paused.set(row.id, pipeline);
      }
      for (const listed of wanted.values()) {
        if (this.owned.has(listed.id) || Date.now() < (this.unplaced.get(listed.id)?.retryAt ?? 0) || !(await this.acquire(listed.id))) continue;
        // As it is now that the lease is held: a stop may have come in since the list was read (and its
        // slot been dropped), and the last owner's final figures, which this run's history starts from.
        const row = await this.deps.replications.get(listed.id);
        if (row?.desired !== "running") await this.release(listed.id);
        else await this.run(row);
      }
      this.lastTickOk = true;
    } catch (e) {
      this.lastTickOk = false;
      this.deps.log?.(`orchestrator: ${(e as Error).message}`);
    }
  }

  // Replications whose pipeline could not even be made (a connection gone, a
  // destination the policy now refuses): tried again after a backoff, each
  // attempt reported, without holding up the others.
  private readonly unplaced = new Map<string, { backoff: Backoff; retryAt: number }>();

  private async run(row: ReplicationRow): Promise<void> {
    let spec: Awaited<ReturnType<Orchestrator["spec"]>>;
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
      target: { connection: target, schema: row.target.schema || "public" },
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
