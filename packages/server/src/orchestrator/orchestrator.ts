// Runs the leased jobs of this node. A job is owned by one server at a time
// through a lease renewed by heartbeat; a dead server's jobs are taken over by
// another once their leases expire. Replications are one kind of job
// (replications.ts: the engine runs them); failovers and migrations are
// others (jobs.ts: persisted step machines).
//
// A control request stores what it changed, then signals that one job: this
// node reconciles it at once (the request awaits that), and a NOTIFY tells the
// other nodes, whose owner of the job reconciles it when it hears. A periodic
// pass renews leases, takes over what nobody holds and catches any signal that
// was lost. Each job is reconciled by one operation at a time (serial.ts).
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { JsonObject } from "@bufbuild/protobuf";
import { connect, DrainError, formatLsn, lockWaits, readCheckpoint, type KeyProvider, type ObservedFigures, type TokenVault, type WorkerPool } from "@heliosdb/replication-engine";
import type pg from "pg";
import type { ConnectionStore } from "../store/connections";
import type { EventStore } from "../store/events";
import { JOBS_CHANNEL, parseSignal, type JobSignals, type SignalledKind } from "../store/job-signals";
import type { CancelOutcome, JobRow, JobStore, StepPlan } from "../store/jobs";
import type { LeaseStore } from "../store/leases";
import type { MetricSampleStore } from "../store/metric-samples";
import type { Notices } from "../store/notices";
import type { ReplicationRow, ReplicationStore } from "../store/replications";
import { planOf, type JobKind } from "./job-kind";
import { Jobs } from "./jobs";
import { Replications } from "./replications";
import { Serial } from "./serial";

export interface OrchestratorDeps {
  replications: ReplicationStore;
  connections: ConnectionStore;
  leases: LeaseStore;
  events: EventStore;
  metricSamples: MetricSampleStore;
  jobs: JobStore;
  /** The kinds of step-machine job this server runs (failover, migration; tests add their own). */
  jobKinds?: readonly JobKind[];
  keys: KeyProvider;
  vault?: TokenVault;
  pool?: WorkerPool;
  /**
   * Signals between servers: the NOTIFY a control request sends, and the
   * LISTEN session that hears the other servers' (JOBS_CHANNEL). Without it
   * the other servers act on a change at their next pass.
   */
  signals?: { send: JobSignals; notices: Notices };
  /** Seconds a lease lasts without renewal (default 15). */
  leaseSeconds?: number;
  /** Milliseconds between passes: lease renewals, takeovers (default 2000). */
  tickMs?: number;
  /** Retained WAL above which a paused replication warns (the engine's default: 1 GiB). */
  walRetentionWarningBytes?: number;
  /** Milliseconds between two metric samples of each replication this node runs (default 10,000). */
  sampleIntervalMs?: number;
  log?: (message: string) => void;
}

/** Figures older than this are not live: several missed passes of their owner, and never less than 5 s. */
export function staleAfterMs(tickMs: number): number {
  return Math.max(5000, 3 * tickMs);
}

export class Orchestrator {
  readonly nodeId = randomUUID();
  private readonly serial = new Serial();
  private readonly replications: Replications;
  private readonly jobs: Jobs;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private started = false;
  // Set by shutdown: no pass or reconciliation starts after it (a control
  // request's included), so the ones it waits for are the last.
  private closing = false;
  private lastTickOk = false;
  // Set by halt: as a crash, nothing more is recorded or released.
  private halted = false;

  constructor(private readonly deps: OrchestratorDeps) {
    this.replications = new Replications(deps, this.nodeId, (id, fn) => this.serial.run(key("replication", id), fn));
    this.jobs = new Jobs({
      jobs: deps.jobs,
      kinds: deps.jobKinds ?? [],
      nodeId: this.nodeId,
      leaseSeconds: deps.leaseSeconds ?? 15,
      serial: (id, fn) => this.serial.run(key("job", id), fn),
      ...(deps.log ? { log: deps.log } : {}),
    });
    deps.signals?.notices.on((payload) => this.heard(payload), JOBS_CHANNEL);
  }

  /** Whether the loop runs and its last pass reached the database. */
  get healthy(): boolean {
    return this.started && this.lastTickOk;
  }

  get running(): number {
    return this.replications.owned.size;
  }

  /** How old stored figures may be and still count as live (see staleAfterMs). */
  get staleAfterMs(): number {
    return staleAfterMs(this.deps.tickMs ?? 2000);
  }

  /** Replications that should run, are in Error, or should run without a live owner (for the health check). */
  census(): Promise<{ running: number; error: number; unowned: number }> {
    return this.deps.replications.census(new Date(Date.now() - this.staleAfterMs));
  }

  /** Starts the periodic passes; resolves when the first has ended (its outcome is what `healthy` reports). */
  start(): Promise<void> {
    this.started = true;
    const loop = () => {
      const pass = this.pass();
      void pass.finally(() => {
        if (this.started) this.timer = setTimeout(loop, this.deps.tickMs ?? 2000);
      });
      return pass;
    };
    const first = loop();
    this.replications.sampler.start();
    return first;
  }

  /** A full pass now rather than at the next tick: every job of this node reconciled, anything unowned taken. */
  poke(): Promise<void> {
    return this.pass();
  }

  /**
   * The replication `id` changed (the change is stored): reconciles it on this
   * node now — its lease taken, renewed or let go, its pipeline run, paused
   * or stopped — and tells the other nodes, so that its owner there does the
   * same at once. Resolves when this node is done with it; never rejects (a
   * failure is logged, and the next pass tries again).
   */
  async signal(id: string): Promise<void> {
    if (this.closing) return;
    await Promise.all([this.reconcile("replication", id), this.tell("replication", id)]);
  }

  /**
   * The replication's figures as this node runs it. The API answers from the
   * stored figures instead (every server alike); this is for tests and
   * diagnostics.
   */
  figures(id: string): ObservedFigures | undefined {
    return this.replications.figures(id);
  }

  /** The replications this node runs now, with their live figures (for the Prometheus exposition). */
  ownedFigures(): { row: ReplicationRow; figures: ObservedFigures }[] {
    return this.replications.ownedFigures();
  }

  /**
   * Ends what a replication stored as stopped (a stop or delete request did
   * that first) holds on its source, wherever it ran. Its owner — this node
   * now, another when it hears the signal (or at its next pass, a dead one's
   * lease once it lapses) — stops the pipeline and lets the lease go; this
   * node then takes the lease, so that nobody starts it meanwhile, and drops
   * whatever is left (the slot of a replication nobody ran: paused, in Error)
   * and, asked to, what it created on the target. "busy": the lease was not
   * free within a lease period and two passes; "superseded": a start came in
   * meanwhile; "unreachable": a connection of it was deleted since it stopped
   * (its stop dropped the slot then), so there is nothing to drop — and no
   * target to clean up.
   */
  async end(row: ReplicationRow, options: { cleanupTarget?: boolean } = {}): Promise<"ended" | "busy" | "superseded" | "unreachable"> {
    await this.signal(row.id);
    const tickMs = this.deps.tickMs ?? 2000;
    const deadline = Date.now() + (this.deps.leaseSeconds ?? 15) * 1000 + 2 * tickMs;
    for (;;) {
      const outcome = await this.serial.run(key("replication", row.id), () => this.replications.end(row.id, options));
      if (outcome) return outcome;
      if (Date.now() >= deadline) return "busy";
      await sleep(Math.min(100, tickMs));
    }
  }

  /**
   * Resolves, with the applied position, once the replication's target has
   * committed everything up to `lsn` (a fence's final LSN): woken by the
   * pipeline when this node runs it, else read from the checkpoint the target
   * holds — so it ends whichever node applies the changes, a takeover
   * meanwhile included. Rejects at `timeoutMs` (with the last error met, if
   * any) or when `signal` aborts.
   */
  async drain(row: ReplicationRow, lsn: bigint, options: { timeoutMs: number; signal?: AbortSignal }): Promise<bigint> {
    const deadline = Date.now() + options.timeoutMs;
    let target: pg.Client | undefined;
    let lastError: unknown;
    try {
      for (;;) {
        options.signal?.throwIfAborted();
        const left = deadline - Date.now();
        if (left <= 0) {
          const why = lastError ? `; last error: ${(lastError as Error).message}` : "";
          // What held the applier, when a lock did (evidence for an operator; nothing to act on here).
          const waits = target ? await lockWaits(target) : [];
          const held = waits.length ? `; on the target, ${waits.join("; ")}` : "";
          throw new Error(`the target did not apply ${formatLsn(lsn)} within ${options.timeoutMs} ms${why}${held}`);
        }
        const pipeline = this.replications.pipeline(row.id);
        if (pipeline) {
          try {
            return await pipeline.drainTo(lsn, { timeoutMs: Math.min(left, 1_000), ...(options.signal ? { signal: options.signal } : {}) });
          } catch (e) {
            // Aborted: the caller's. Halted or a slice's end: the target says where it is.
            if (!(e instanceof DrainError) || e.reason === "aborted") throw e;
            lastError = e;
          }
        }
        try {
          if (!target) {
            const config = await this.deps.connections.clientConfig(row.target.connectionId, row.target.database);
            if (!config) throw new Error(`the target connection ${row.target.connectionId} no longer exists`);
            target = await connect(config);
          }
          const checkpoint = await readCheckpoint(target, row.id);
          if (checkpoint && checkpoint.lsn >= lsn) return checkpoint.lsn;
        } catch (e) {
          lastError = e;
          await target?.end().catch(() => undefined);
          target = undefined;
        }
        await sleep(Math.min(25, Math.max(1, deadline - Date.now())), undefined, options.signal ? { signal: options.signal } : {});
      }
    } finally {
      await target?.end().catch(() => undefined);
    }
  }

  /** Applies a configuration changed live (QoS, lag threshold, priority) to the pipeline, here or on its owner. */
  async reconfigure(row: ReplicationRow): Promise<void> {
    if (this.closing) return;
    this.replications.noteSignal(row.id);
    await Promise.all([this.serial.run(key("replication", row.id), () => this.replications.reconfigure(row)), this.tell("replication", row.id)]);
  }

  /** The steps a new job of `kind` is created with (for a store that creates it in its own transaction); undefined when this server does not run the kind. */
  plan(kind: string): StepPlan[] | undefined {
    const k = this.jobs.kind(kind);
    return k && planOf(k);
  }

  /** Creates a job of `kind` with `state` as its input, and runs it: here, unless another server takes its lease first. */
  async submit(kind: string, state: JsonObject, id: string = randomUUID()): Promise<JobRow> {
    const steps = this.plan(kind);
    if (!steps) throw new Error(`this server runs no jobs of kind ${kind}`);
    const row = await this.deps.jobs.insert({ id, kind, steps, state });
    await this.signalJob(id);
    return row;
  }

  /**
   * The job `id` changed (created, asked to cancel; the change is stored):
   * reconciles it here now — taken and run if nobody holds it, told of a
   * cancel if it runs here — and tells the other nodes. Never rejects.
   */
  async signalJob(id: string): Promise<void> {
    if (this.closing) return;
    await Promise.all([this.reconcile("job", id), this.tell("job", id)]);
  }

  /**
   * Asks job `id` to cancel. "cancelling": accepted (its holder aborts the
   * running step and rolls the job back); "refused": a step that cannot be
   * cancelled has begun; "ended": it has ended, or rolls back after a
   * failure; "not_found".
   */
  async cancel(id: string): Promise<CancelOutcome> {
    const outcome = await this.deps.jobs.requestCancel(id);
    if (outcome === "cancelling") await this.signalJob(id);
    return outcome;
  }

  /** The step-machine jobs this server runs now. */
  get runningJobs(): string[] {
    return this.jobs.running;
  }

  /**
   * Stops the loop; pauses the local pipelines (slots kept) and stops the jobs
   * (a re-runnable step is aborted, another finishes first), releasing their
   * leases for another node.
   */
  async shutdown(): Promise<void> {
    if (this.halted) return;
    await this.stop();
    await this.jobs.shutdown();
    await this.replications.shutdown(true);
  }

  /**
   * Stops as a crash would, for tests and drills: the loop, the pipelines and
   * the jobs' steps end, nothing more is recorded, and no lease is released
   * (they lapse, and another server takes over). A later shutdown does nothing.
   */
  async halt(): Promise<void> {
    this.halted = true;
    await this.stop();
    await this.jobs.halt();
    await this.replications.shutdown(false);
  }

  private async stop(): Promise<void> {
    this.closing = true;
    this.started = false;
    clearTimeout(this.timer);
    await this.replications.sampler.stop();
    await this.ticking;
    await this.serial.idle();
  }

  // One pass at a time (the periodic one, a poke, one after the LISTEN session was back).
  private pass(): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.ticking = (this.ticking ?? Promise.resolve()).then(() => this.tick());
    return this.ticking;
  }

  private async tick(): Promise<void> {
    try {
      // Each kind's pass on its own: a slow one does not hold up the other's renewals.
      const passes = await Promise.allSettled([this.replications.pass(), this.jobs.pass()]);
      for (const p of passes) if (p.status === "rejected") throw p.reason;
      this.lastTickOk = true;
    } catch (e) {
      this.lastTickOk = false;
      this.deps.log?.(`orchestrator: ${(e as Error).message}`);
    }
  }

  // Reconciles one job on this node, under its key; a failure is logged (the next pass tries again).
  private async reconcile(kind: SignalledKind, id: string): Promise<void> {
    if (this.closing) return;
    if (kind === "replication") this.replications.noteSignal(id);
    const reconcile = () => (kind === "replication" ? this.replications.reconcile(id) : this.jobs.reconcile(id));
    await this.serial.run(key(kind, id), reconcile).catch((e) => {
      this.deps.log?.(`orchestrator: could not reconcile ${kind} ${id}: ${(e as Error).message}`);
    });
  }

  // Tells the other nodes; one that does not hear it finds the change at its next pass.
  private async tell(kind: SignalledKind, id: string): Promise<void> {
    await this.deps.signals?.send.send({ kind, id, from: this.nodeId }).catch((e) => {
      this.deps.log?.(`orchestrator: could not signal ${kind} ${id} to the other servers: ${(e as Error).message}`);
    });
  }

  private heard(payload: string): void {
    if (!this.started || this.closing) return;
    // The session was down, or is back: signals may have been lost meanwhile.
    if (payload === "*") return void this.pass();
    const signal = parseSignal(payload);
    if (signal && signal.from !== this.nodeId) void this.reconcile(signal.kind, signal.id);
  }
}

const key = (kind: SignalledKind, id: string) => `${kind}:${id}`;
