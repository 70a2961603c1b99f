// The metrics of running replications: each replication's owner records a
// sample of its pipeline's observed figures at a fixed interval, and one
// server at a time rolls the samples up and deletes what is past retention.
import type { ObservedFigures } from "@heliosdb/replication-engine";
import type { MetricSample, MetricSampleStore } from "../store/metric-samples";
import { DEFAULT_RETENTION, RESOLUTIONS, type MetricRetention, type MetricRollupStore } from "../store/metric-rollups";

export interface MetricsOptions {
  /** Milliseconds between two samples of a running replication (default 10,000). */
  sampleIntervalMs?: number;
  /** Milliseconds between two rollup and retention passes (default 60,000). */
  maintenanceIntervalMs?: number;
  /** Seconds raw samples and each bucket width are kept (DEFAULT_RETENTION). */
  retention?: Partial<MetricRetention>;
}

export const DEFAULT_SAMPLE_INTERVAL_MS = 10_000;
const DEFAULT_MAINTENANCE_INTERVAL_MS = 60_000;

/** The retention in effect; raw samples must outlive the widest bucket, which is rolled from them. */
export function metricRetention(given: Partial<MetricRetention> = {}): MetricRetention {
  const retention = { ...DEFAULT_RETENTION, ...given };
  const widest = Math.max(...Object.values(RESOLUTIONS));
  if (!(retention.raw > widest)) throw new Error(`raw metric samples must be kept longer than the widest bucket (${widest / 3600} h): ${retention.raw} s`);
  for (const [name, seconds] of Object.entries(retention)) {
    if (!(Number.isFinite(seconds) && seconds > 0)) throw new Error(`metric retention ${name}: not a number of seconds above 0: ${seconds}`);
  }
  return retention;
}

/** What a pipeline observed, as a sample: only figures it measured (CPU and memory are not measured per pipeline). */
export function sampleOf(f: ObservedFigures): MetricSample {
  return {
    lagSeconds: f.lagSeconds,
    lagBytes: f.lagBytes,
    rowsPerSecond: f.rowsPerSecond,
    bytesPerSecond: f.bytesPerSecond,
    transactionsPerSecond: f.transactionsPerSecond,
    compressionRatio: f.compressionRatio,
    health: f.health,
  };
}

/**
 * Runs `task` every `intervalMs` on a fixed cadence (a slow run does not push
 * the later ones back; a slot missed while it ran is skipped), one run at a time.
 */
export class Cadence {
  private timer?: NodeJS.Timeout;
  private current: Promise<void> = Promise.resolve();
  private next = 0;
  private stopped = true;

  constructor(
    private readonly intervalMs: number,
    private readonly task: () => Promise<void>,
  ) {}

  start(): void {
    this.stopped = false;
    this.next = Date.now() + this.intervalMs;
    this.schedule();
  }

  /** Stops; resolves once a run under way has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.current = this.task().finally(() => {
        const now = Date.now();
        while (this.next <= now) this.next += this.intervalMs;
        if (!this.stopped) this.schedule();
      });
    }, Math.max(0, this.next - Date.now()));
  }
}

/** Records, at each interval, a sample of every replication this node owns (the store keeps only the lease holder's). */
export function metricsSampler(deps: {
  intervalMs: number;
  owner: string;
  owned: () => { replicationId: string; figures: ObservedFigures }[];
  samples: MetricSampleStore;
  log?: (message: string) => void;
}): Cadence {
  return new Cadence(deps.intervalMs, async () => {
    const samples = deps.owned().map(({ replicationId, figures }) => ({ replicationId, ...sampleOf(figures) }));
    await deps.samples.record(deps.owner, samples).catch((e) => deps.log?.(`metrics: could not record samples: ${(e as Error).message}`));
  });
}

/** Rolls up and prunes at each interval; a server whose pass another holds skips it. */
export function metricsMaintenance(deps: {
  intervalMs?: number;
  retention: MetricRetention;
  rollups: MetricRollupStore;
  log?: (message: string) => void;
}): Cadence {
  return new Cadence(deps.intervalMs ?? DEFAULT_MAINTENANCE_INTERVAL_MS, async () => {
    await deps.rollups.maintain(deps.retention).catch((e) => deps.log?.(`metrics: rollup and retention failed: ${(e as Error).message}`));
  });
}
