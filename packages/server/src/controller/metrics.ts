// The rules of the metrics API (spec §2.5): which replication's series a
// caller may read (its tenant's, as for GET /replications/{id}), what a
// valid range and resolution are, and which data answers them — buckets of
// the resolution, from the rollups and the samples not rolled yet, and
// aggregates from raw samples only (a percentile cannot be rebuilt from
// buckets), so an aggregate's range lies within the raw retention.
import { RESOLUTIONS, type Bucket, type GroupAggregate, type GroupBy, type MetricRetention, type MetricRollupStore, type Resolution } from "../store/metric-rollups";
import type { Caller } from "./caller";
import type { ReplicationController } from "./replications";
import { Violations } from "./violations";

/** The most points a series may hold. */
export const MAX_POINTS = 10_000;
const HOUR_MS = 3_600_000;
const GROUP_BYS: GroupBy[] = ["tenant_id", "qos_tier", "region"];

export interface RangeQuery {
  start?: Date;
  end?: Date;
}

export interface SeriesQuery extends RangeQuery {
  /** 1m, 5m, 1h, 1d; "" to choose from the range; anything else is refused. */
  resolution: string;
}

export interface Series {
  replicationId: string;
  start: Date;
  end: Date;
  resolution: Resolution;
  buckets: Bucket[];
}

export interface Aggregates {
  start: Date;
  end: Date;
  groups: GroupAggregate[];
}

export interface MetricsControllerDeps {
  replications: ReplicationController;
  rollups: MetricRollupStore;
  retention: MetricRetention;
  now?: () => number;
}

export class MetricsController {
  constructor(private readonly deps: MetricsControllerDeps) {}

  private get now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** A replication's series over [start, end) (default the last hour) at a resolution (default: from the range). */
  async series(caller: Caller | undefined, id: string, query: SeriesQuery): Promise<Series> {
    const v = new Violations();
    const { start, end } = range(query, this.now, v);
    if (query.resolution && !Object.hasOwn(RESOLUTIONS, query.resolution)) {
      v.add("resolution", `one of ${Object.keys(RESOLUTIONS).join(", ")}, not "${query.resolution}"`);
    }
    v.check();
    const resolution = (query.resolution as Resolution) || this.choose(start, end);
    const width = RESOLUTIONS[resolution] * 1000;
    const points = start.getTime() === end.getTime() ? 0 : pointsOf(start, end, width);
    if (points > MAX_POINTS) {
      v.add(query.resolution ? "resolution" : "start_time", `${points} points of ${resolution} from start_time to end_time; at most ${MAX_POINTS}: choose a coarser resolution or a shorter range`).check();
    }
    // Another tenant's replication is NOT_FOUND, as a missing one.
    const row = await this.deps.replications.get(caller, id, { cached: true });
    if (points === 0) return { replicationId: row.id, start, end, resolution, buckets: [] };
    const from = new Date(Math.floor(start.getTime() / width) * width);
    const to = new Date(Math.ceil(end.getTime() / width) * width);
    return { replicationId: row.id, start, end, resolution, buckets: await this.deps.rollups.series(row.id, RESOLUTIONS[resolution], from, to) };
  }

  /** Aggregates over [start, end) (default the last hour), grouped; a tenant-bound caller's over its tenant only. */
  async aggregate(caller: Caller | undefined, groupBy: string, query: RangeQuery): Promise<Aggregates> {
    const v = new Violations();
    const { start, end } = range(query, this.now, v);
    if (groupBy && !GROUP_BYS.includes(groupBy as GroupBy)) v.add("group_by", `one of ${GROUP_BYS.join(", ")}, not "${groupBy}"`);
    const keptSince = this.now - this.deps.retention.raw * 1000;
    if (start.getTime() < keptSince) {
      v.add("start_time", `aggregates are computed from raw samples, kept ${this.deps.retention.raw / 3600} h: start at ${new Date(keptSince).toISOString()} or later`);
    }
    v.check();
    if (start.getTime() === end.getTime()) return { start, end, groups: [] };
    const groups = await this.deps.rollups.aggregate((groupBy as GroupBy) || undefined, start, end, caller?.tenantId);
    return { start, end, groups };
  }

  // The finest resolution whose buckets are still kept at `start` and that gives at most MAX_POINTS;
  // else the finest that gives at most MAX_POINTS; else the coarsest (refused as too many points).
  private choose(start: Date, end: Date): Resolution {
    const names = Object.keys(RESOLUTIONS) as Resolution[];
    const fits = names.filter((name) => pointsOf(start, end, RESOLUTIONS[name] * 1000) <= MAX_POINTS);
    const kept = fits.find((name) => start.getTime() >= this.now - this.deps.retention[name] * 1000);
    return kept ?? fits[0] ?? names[names.length - 1]!;
  }
}

// What a google.protobuf.Timestamp may hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
const EARLIEST = -62_135_596_800_000;
const LATEST = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

// The range asked for: end defaults to now, start to an hour before end; end before start is refused.
function range(query: RangeQuery, now: number, v: Violations): { start: Date; end: Date } {
  const end = query.end ?? new Date(now);
  const start = query.start ?? new Date(end.getTime() - HOUR_MS);
  const valid = (field: string, at: Date) => {
    const ok = at.getTime() >= EARLIEST && at.getTime() <= LATEST;
    if (!ok) v.add(field, "not a time from 0001-01-01 to 9999-12-31");
    return ok;
  };
  const bothValid = [valid("start_time", start), valid("end_time", end)].every(Boolean);
  if (bothValid && end.getTime() < start.getTime()) v.add("end_time", "must not be before start_time");
  return { start, end };
}

// Buckets of `width` ms that [start, end) touches.
function pointsOf(start: Date, end: Date, width: number): number {
  return Math.ceil(end.getTime() / width) - Math.floor(start.getTime() / width);
}
