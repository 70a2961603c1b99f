// A relation message mid-stream means the source table changed. Columns it
// added are added on the target; a column whose type changed is a change
// the replication cannot follow (a person decides what the target becomes);
// a new column whose type cannot travel in binary format ends binary
// transfer, and the stream restarts in text from its last acknowledgment.
import type pg from "pg";
import { addMissingColumns } from "../apply/target-schema";
import { connect } from "../connect";
import { onSide } from "../failure";
import { readCatalog } from "../source/catalog";
import type { Relation } from "../types";
import type { PipelineContext } from "./context";
import type { Setup } from "./setup";
import { binaryTransferPossible } from "./transfer-format";

/** A source schema change the replication cannot follow (a changed type or key). */
export class SchemaChangeError extends Error {
  override readonly name = "SchemaChangeError";
}

/** Thrown while streaming in binary format when a relation gains a column that cannot travel in it. */
export class TextTransferNeeded extends Error {
  override name = "TextTransferNeeded";
}

export interface EvolutionContext {
  source: pg.ClientBase;
  target: pg.ClientBase;
  targetSchema: string;
  setup: Setup;
  /** Whether the stream runs in binary format, and whether `relation` could still travel in it. */
  binary: boolean;
  binaryStillPossible: (relation: Relation) => Promise<boolean>;
  emit: (type: string, message: string, details: Record<string, string>) => void;
}

// A relation message: new source columns are added on the target; a
// changed type or key is a schema change the replication cannot follow.
export async function evolve(ctx: PipelineContext, relation: Relation): Promise<Relation> {
  // Every new stream sends each table's relation message before its first
  // change. One that describes the table as the replication set it up
  // changes nothing: no source session is opened to read the catalog (with
  // many replications, one per table per stream start adds up).
  const known = ctx.stages.setup!.published.find((p) => p.table.oid === relation.oid)?.table;
  if (known && sameColumns(known, relation)) return withKeys(relation, known);
  const source = await onSide("source", connect(ctx.spec().source.connection));
  try {
    return await evolveRelation(
      {
        source,
        target: ctx.stages.target!,
        targetSchema: ctx.spec().target.schema,
        setup: ctx.stages.setup!,
        binary: ctx.stages.binary,
        binaryStillPossible: (described) => binaryTransferPossible(ctx, [described], source),
        emit: (type, message, details) => ctx.emit(type, "Info", message, details),
      },
      relation,
    );
  } finally {
    await source.end();
  }
}

/** Brings the target in line with a relation message; returns the relation to apply changes with. */
export async function evolveRelation(ctx: EvolutionContext, relation: Relation): Promise<Relation> {
  const current = await onSide("source", readCatalog(ctx.source, relation.schema));
  const table = current.find((t) => t.oid === relation.oid);
  if (!table) throw new Error(`table ${relation.table} is no longer in the source catalog`);
  const known = ctx.setup.published.find((p) => p.table.oid === relation.oid)?.table;
  for (const column of relation.columns) {
    const before = known?.columns.find((c) => c.name === column.name);
    if (before && before.typeOid !== column.typeOid) {
      const now = table.columns.find((c) => c.name === column.name)?.typeName ?? `oid ${column.typeOid}`;
      throw new SchemaChangeError(`column ${relation.table}.${column.name} changed type from ${before.typeName} to ${now}`);
    }
  }
  const described = { ...table, columns: relation.columns.map((c) => table.columns.find((t) => t.name === c.name) ?? c) };
  if (ctx.binary && !(await ctx.binaryStillPossible(described))) {
    ctx.emit("SchemaChanged", `${relation.table} has a column whose type streams only as text: the stream continues in text format`, {
      table: relation.table,
    });
    throw new TextTransferNeeded();
  }
  const targetColumns = ctx.setup.plan.forRelation(described).targetColumns;
  const added = await onSide("target", addMissingColumns(ctx.target, { schema: ctx.targetSchema, table: relation.table, columns: targetColumns }));
  if (added.length > 0) {
    ctx.emit("SchemaChanged", `added column(s) ${added.join(", ")} to ${relation.table} on the target`, { table: relation.table });
  }
  return withKeys(relation, described);
}

// Keys are the target's primary key, whatever replica identity the source sends.
function withKeys(relation: Relation, described: Relation): Relation {
  return { ...relation, columns: relation.columns.map((c) => ({ ...c, isKey: described.columns.find((t) => t.name === c.name)?.isKey ?? false })) };
}

// The same columns, in the same order, of the same types.
function sameColumns(known: Relation, relation: Relation): boolean {
  return (
    known.schema === relation.schema &&
    known.table === relation.table &&
    known.columns.length === relation.columns.length &&
    known.columns.every((c, i) => c.name === relation.columns[i]!.name && c.typeOid === relation.columns[i]!.typeOid)
  );
}
