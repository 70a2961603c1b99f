// Building a run's stages from the replication: the batch codec (when
// compression or encryption is on), the applier and its conflict events, and
// the batcher with what it consults — the QoS tier's settings, the row
// transforms, schema evolution, and which tables' changes the replication
// carries.
import { CompressionConfig_CompressionLevel as Level } from "@heliosdb/replication-proto";
import type pg from "pg";
import { Applier, type Conflict } from "../apply/applier";
import { BatchCodec } from "../codec/codec";
import { Batcher } from "./batcher";
import type { PipelineContext } from "./context";
import { qosSettings } from "./qos";
import { evolve } from "./schema-evolution";
import type { ReplicationSpec } from "./spec";

const LEVELS: Record<Level, "low" | "medium" | "high"> = { [Level.LOW]: "low", [Level.MEDIUM]: "medium", [Level.HIGH]: "high" };

export function makeCodec(key: Buffer, spec: ReplicationSpec): BatchCodec | undefined {
  const { compression, encryption } = spec.config;
  if (!compression?.enabled && !encryption?.enabled) return undefined;
  return new BatchCodec({
    replicationId: spec.replicationId,
    compression: { enabled: !!compression?.enabled, level: LEVELS[compression?.level ?? Level.LOW] },
    encryption: { enabled: !!encryption?.enabled, ...(encryption?.enabled ? { key } : {}) },
  });
}

export function makeApplier(ctx: PipelineContext, target: pg.Client): Applier {
  const spec = ctx.spec();
  const conflict = (c: Conflict) =>
    ctx.emit(c.resolved ? "ConflictResolved" : "ConflictDetected", "Warning", `${c.kind.replace(/_/g, " ")} in ${c.table}`, {
      table: c.table,
      key: JSON.stringify(c.key),
      resolution: c.resolved ? "source_wins" : "unresolved",
    });
  return new Applier(target, spec.replicationId, spec.target.schema, conflict, () => ctx.figures.totals());
}

export function makeBatcher(ctx: PipelineContext): Batcher {
  const { stages } = ctx;
  const plan = stages.setup!.plan;
  return new Batcher({
    applier: stages.applier!,
    ...(stages.codec ? { codec: stages.codec } : {}),
    ...(ctx.deps.transport ? { transport: ctx.deps.transport } : {}),
    settings: () => qosSettings(ctx.spec().config.qosTier),
    figures: ctx.figures,
    transformFor: (relation) => {
      const p = plan.forRelation(relation);
      return p.transformed ? p : undefined;
    },
    onRelation: (relation) => evolve(ctx, relation),
    carries: (oid) => {
      const published = stages.setup!.published.find((p) => p.table.oid === oid);
      return published ? (stages.skipBefore.get(published.table.table) ?? true) : false;
    },
    beforeApply: () => plan.flush(),
    acknowledge: (lsn) => stages.stream?.acknowledge(lsn),
    onError: (e) => ctx.fail(e),
  });
}
