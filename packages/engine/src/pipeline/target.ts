// The target's side of a replication: made ready before a run copies (the
// checkpoint table, the replicated tables, the roll-ups the copy fills),
// and cleaned up on a DELETE with cleanup_target, which drops exactly what
// the replication created there (apply/created-objects.ts).
import type pg from "pg";
import { planAggregates, installAggregate } from "../apply/aggregate";
import { deleteCheckpoint, ensureCheckpointTable, readCheckpoint, type Checkpoint } from "../apply/checkpoint";
import { dropCreatedObjects } from "../apply/created-objects";
import { ensureTargetTables, type TargetTable } from "../apply/target-schema";
import { connect } from "../connect";
import { onSide } from "../failure";
import type { PipelineContext } from "./context";
import type { ReplicationSpec } from "./spec";

/** Creates what is missing on the target; returns the replication's checkpoint, if it has one. */
export function prepareTarget(ctx: PipelineContext, target: pg.Client, tables: TargetTable[]): Promise<Checkpoint | undefined> {
  return onSide("target", async () => {
    await ensureCheckpointTable(target);
    await ensureTargetTables(target, tables, ctx.spec().replicationId);
    // Roll-ups are installed before the copy, whose COPY statements then fill them.
    for (const aggregate of planAggregates(ctx.spec().config.transforms, tables)[0]) await installAggregate(target, aggregate, ctx.spec().replicationId);
    return readCheckpoint(target, ctx.spec().replicationId);
  });
}

/** Drops what the replication created on the target, and its checkpoint. */
export async function cleanupTarget(spec: ReplicationSpec): Promise<void> {
  const target = await onSide("target", connect(spec.target.connection));
  try {
    await ensureCheckpointTable(target);
    await dropCreatedObjects(target, spec.replicationId);
    await deleteCheckpoint(target, spec.replicationId);
  } finally {
    await target.end();
  }
}
