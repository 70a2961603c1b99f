// MetricsService: translates between messages and the metrics controller,
// which decides what the caller may read and over which range.
import { create, type DescEnum } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  GetAggregatedMetricsResponseSchema,
  GetReplicationMetricsResponseSchema,
  MetricPointSchema,
  MetricsGroupBySchema,
  MetricsResolutionSchema,
  QoSTierSchema,
  restEnumValue,
  type MetricPoint,
  type MetricsService,
} from "@heliosdb/replication-proto";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { MetricsController } from "../controller/metrics";
import type { Bucket, GroupAggregate } from "../store/metric-rollups";
import { callerOf } from "./context";

// An enum value as the controller takes it: its REST spelling ("1m", "qos_tier"), "" when unset, "#n" for a number the contract lacks.
function spelled(schema: DescEnum, n: number): string {
  const value = schema.values.find((v) => v.number === n);
  return value ? (restEnumValue(value) ?? "") : `#${n}`;
}

const range = (req: { startTime?: Timestamp; endTime?: Timestamp }) => ({
  ...(req.startTime ? { start: timestampDate(req.startTime) } : {}),
  ...(req.endTime ? { end: timestampDate(req.endTime) } : {}),
});

type Figure = "lagSeconds" | "lagBytes" | "rowsPerSecond" | "bytesPerSecond" | "compressionRatio" | "transactionsPerSecond" | "cpuUsagePercent" | "memoryUsageBytes";

// One series: a point per bucket that has the figure (mean, largest, and the 99th percentile where it is kept).
function points(buckets: Bucket[], figure: Figure): MetricPoint[] {
  return buckets.flatMap((b) => {
    const record = b as unknown as Record<string, number | null>;
    const value = record[`${figure}Avg`];
    if (value === null || value === undefined) return [];
    const max = record[`${figure}Max`];
    const p99 = record[`${figure}P99`];
    return [
      create(MetricPointSchema, {
        timestamp: timestampFromDate(b.bucket),
        value,
        ...(max !== null && max !== undefined ? { max } : {}),
        ...(p99 !== null && p99 !== undefined ? { p99 } : {}),
      }),
    ];
  });
}

// A group's key as the REST JSON shows it: {"qos_tier": "Premium"}, {"tenant_id": "tenant-123"}; {} for the one group without a dimension.
function groupKey(groupBy: string, group: GroupAggregate): Record<string, string> {
  if (!groupBy) return {};
  if (groupBy === "qos_tier") {
    const tier = QoSTierSchema.values.find((v) => v.name === group.key || v.localName === group.key);
    return { qos_tier: (tier && restEnumValue(tier)) ?? group.key };
  }
  return { [groupBy]: group.key };
}

export function metricsService(controller: MetricsController): ServiceImpl<typeof MetricsService> {
  return {
    async getReplicationMetrics(req, ctx) {
      const resolution = spelled(MetricsResolutionSchema, req.resolution);
      const series = await controller.series(callerOf(ctx), req.replicationId, { ...range(req), resolution });
      const chosen = MetricsResolutionSchema.values.find((v) => restEnumValue(v) === series.resolution)!;
      return create(GetReplicationMetricsResponseSchema, {
        replicationId: series.replicationId,
        timeRange: { start: timestampFromDate(series.start), end: timestampFromDate(series.end), resolution: chosen.number },
        metrics: {
          replicationLagSeconds: points(series.buckets, "lagSeconds"),
          throughputRowsPerSecond: points(series.buckets, "rowsPerSecond"),
          compressionRatio: points(series.buckets, "compressionRatio"),
          replicationLagBytes: points(series.buckets, "lagBytes"),
          throughputBytesPerSecond: points(series.buckets, "bytesPerSecond"),
          throughputTransactionsPerSecond: points(series.buckets, "transactionsPerSecond"),
          cpuUsagePercent: points(series.buckets, "cpuUsagePercent"),
          memoryUsageBytes: points(series.buckets, "memoryUsageBytes"),
        },
      });
    },

    async getAggregatedMetrics(req, ctx) {
      const groupBy = spelled(MetricsGroupBySchema, req.groupBy);
      const result = await controller.aggregate(callerOf(ctx), groupBy, range(req));
      return create(GetAggregatedMetricsResponseSchema, {
        timeRange: { start: timestampFromDate(result.start), end: timestampFromDate(result.end) },
        groups: result.groups.map((g) => ({
          groupKey: groupKey(groupBy, g),
          metrics: {
            avgReplicationLagSeconds: g.avgLagSeconds,
            p99ReplicationLagSeconds: g.p99LagSeconds,
            totalReplications: g.total,
            healthyReplications: g.healthy,
            avgCompressionRatio: g.avgCompressionRatio,
          },
        })),
      });
    },
  };
}
