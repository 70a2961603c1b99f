// The metric feed: a sample of one replication's live figures every
// interval, the first at once — the one implementation behind
// StreamReplicationMetrics and the WebSocket "metrics" channel.
//
// The figures are those its owner stores at each pass (services/views.ts,
// observedState), read through the replication cache: whichever server the
// subscriber is on, it gets the owner's figures, as GET does. A change of the
// replication's row (its notification) wakes the subscriber early only to
// see whether the replication is gone; then the feed ends with NOT_FOUND.
// The owner stores figures at every pass, so rows change every few seconds:
// one check per changed replication decides whether its subscribers need
// waking, not one read per subscriber.
import type { ReplicationRow } from "../store/replications";
import type { Caller } from "./caller";
import { Subscriber, SubscriberSet } from "./subscription";
import { Violations } from "./violations";

export const DEFAULT_INTERVAL_SECONDS = 5;
export const MIN_INTERVAL_SECONDS = 1;
export const MAX_INTERVAL_SECONDS = 3600;

export interface MetricSample {
  replicationId: string;
  /** When the owner read the figures from its pipeline (the sample's time when none were stored yet). */
  at: Date;
  lagSeconds: number;
  lagBytes: number;
  rowsPerSecond: number;
  bytesPerSecond: number;
  compressionRatio: number;
  /** Health as GET shows it: Unknown when the figures are not live (no owner, or stale). */
  health: string;
  status: string;
}

export interface MetricFeedDeps {
  /** The replication as GET sees it, for this caller (NOT_FOUND when gone or another tenant's). */
  get: (caller: Caller | undefined, id: string) => Promise<ReplicationRow>;
  /** The same, as this server last heard of it (no round trip to catch up: every sample after the first); no promise when kept. */
  latest: (caller: Caller | undefined, id: string) => ReplicationRow | Promise<ReplicationRow>;
  /** Status, health and figures by the one rule of every read (services/views.ts). */
  observe: (row: ReplicationRow) => { status: string; health: string; figures: ReplicationRow["figures"]; observedAt?: Date };
  /** Calls back with the id of every changed replication row ("*": any may have changed). */
  onChange: (handler: (id: string) => void) => void;
}

export class MetricFeed {
  private readonly subscribers = new SubscriberSet<string>();
  private readonly samples = new WeakMap<ReplicationRow, MetricSample>();
  // Replications being checked, and whether another change came meanwhile (it is checked again: the read may predate it).
  private readonly checking = new Map<string, boolean>();

  constructor(private readonly deps: MetricFeedDeps) {
    deps.onChange((id) => void this.wakeIfGone(id));
  }

  // Its subscribers are woken (to end with NOT_FOUND) only once a replication is gone.
  private async wakeIfGone(id: string): Promise<void> {
    if (id === "*") return this.subscribers.wake();
    if (this.checking.has(id)) return void this.checking.set(id, true);
    if (!this.subscribers.some((key) => key === id)) return;
    this.checking.set(id, false);
    try {
      for (;;) {
        try {
          await this.deps.get(undefined, id);
        } catch {
          // Gone (or unreadable now): each subscriber reads it again, as its caller.
          return this.subscribers.wake((key) => key === id);
        }
        if (!this.checking.get(id)) return;
        this.checking.set(id, false);
      }
    } finally {
      this.checking.delete(id);
    }
  }

  /** Subscriptions open on this server. */
  get open(): number {
    return this.subscribers.size;
  }

  /** Checks the request and the replication (NOT_FOUND as GET), then samples until `signal` aborts or the replication is deleted. */
  async subscribe(caller: Caller | undefined, request: { replicationId: string; intervalSeconds: number }, signal: AbortSignal): Promise<AsyncIterable<MetricSample>> {
    const v = new Violations();
    v.uuid("replication_id", request.replicationId);
    const interval = request.intervalSeconds || DEFAULT_INTERVAL_SECONDS;
    if (!Number.isInteger(interval) || interval < MIN_INTERVAL_SECONDS || interval > MAX_INTERVAL_SECONDS) {
      v.add("interval_seconds", `from ${MIN_INTERVAL_SECONDS} to ${MAX_INTERVAL_SECONDS} (default ${DEFAULT_INTERVAL_SECONDS})`);
    }
    v.check();
    const first = await this.deps.get(caller, request.replicationId);
    return this.stream(caller, new Subscriber(signal), first, interval * 1000);
  }

  private async *stream(caller: Caller | undefined, subscriber: Subscriber, first: ReplicationRow, intervalMs: number): AsyncGenerator<MetricSample> {
    this.subscribers.add(subscriber, first.id);
    try {
      let row = first;
      // A fixed cadence from the first sample, as the samplers keep (orchestrator/metrics.ts): a sample handed
      // over late does not push the later ones back, so n intervals bring n samples and a busy server's delay
      // does not add up; a slot missed altogether (a reader slower than the interval) is skipped, never doubled.
      let due = Date.now();
      for (;;) {
        yield this.sample(row);
        due += intervalMs;
        const now = Date.now();
        if (due <= now) due += Math.ceil((now - due + 1) / intervalMs) * intervalMs;
        do {
          subscriber.dirty = false;
          await subscriber.sleep(due - Date.now());
          if (subscriber.signal.aborted) return;
          // Rejects with NOT_FOUND once the replication is deleted (wakeIfGone wakes the sleepers then).
          const latest = this.deps.latest(caller, first.id);
          row = latest instanceof Promise ? await latest : latest;
        } while (Date.now() < due);
      }
    } finally {
      this.subscribers.delete(subscriber);
    }
  }

  // One sample per row the cache holds: the subscribers of one replication share it (and what is made from it).
  private sample(row: ReplicationRow): MetricSample {
    let sample = this.samples.get(row);
    if (!sample) this.samples.set(row, (sample = this.sampleOf(row)));
    return sample;
  }

  private sampleOf(row: ReplicationRow): MetricSample {
    const { status, health, figures: f, observedAt } = this.deps.observe(row);
    return {
      replicationId: row.id,
      at: observedAt ?? new Date(),
      lagSeconds: f?.lagSeconds ?? 0,
      lagBytes: f?.lagBytes ?? 0,
      rowsPerSecond: f?.rowsPerSecond ?? 0,
      bytesPerSecond: f?.bytesPerSecond ?? 0,
      compressionRatio: f?.compressionRatio ?? 1,
      health,
      status,
    };
  }
}

