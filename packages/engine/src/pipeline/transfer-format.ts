// Which format the stream carries values in. A relation that gains a column
// binary cannot carry ends binary transfer: the stream restarts in text
// (restart.ts).
import type pg from "pg";
import { connect } from "../connect";
import { onSide } from "../failure";
import { binaryIneligibleColumns } from "../source/binary-transfer";
import type { Relation } from "../types";
import type { PipelineContext } from "./context";

// Binary transfer when nothing reads text values (transforms, the batch
// codec) and every column's type allows it. `source`: a session to ask on, else one is opened.
export async function binaryTransferPossible(ctx: PipelineContext, tables: Relation[], source?: pg.ClientBase): Promise<boolean> {
  const { stages } = ctx;
  if (ctx.deps.binaryTransfer === false || stages.codec) return false;
  if (tables.some((t) => stages.setup!.plan.forRelation(t).transformed)) return false;
  const allBinary = async (client: pg.ClientBase) =>
    (await binaryIneligibleColumns(client, stages.target!, ctx.spec().target.schema, tables)).length === 0;
  if (source) return allBinary(source);
  const client = await onSide("source", connect(ctx.spec().source.connection));
  try {
    return await allBinary(client);
  } finally {
    await client.end();
  }
}
