// Turns a replication's row-level transforms (AnonymizePII, CompressColumns)
// into per-table plans: precomputed per-column functions, so the hot path is
// a loop over the transformed columns only. All configuration problems are
// found here, up front, and reported together, rather than on the first row.
import { AnonymizePIITransform_AnonymizationMethod as Method, type Transform } from "@heliosdb/replication-proto";
import type { Column, ColumnValue, Relation } from "../types";
import { anonymizerFor, Tokenizer, type AnonymizeMethod, type FixedBytesTransform, type ValueTransform } from "./anonymize";
import { COMPRESSED_TYPE, compressValue } from "./compress-columns";
import { lineTransform } from "./line";
import type { LineArena, WireRow } from "../source/wire-row";
import type { KeyProvider } from "./keys";
import type { TokenVault } from "./token-vault";

export interface ValidationProblem {
  /** Where in the request, e.g. "transforms[0].config.columns[2]". */
  path: string;
  /** A sentence saying what is wrong. */
  message: string;
}

/** Every problem found in the transforms, in one error. */
export class TransformValidationError extends Error {
  readonly problems: ValidationProblem[];
  constructor(problems: ValidationProblem[]) {
    super(`invalid transforms:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`);
    this.name = "TransformValidationError";
    this.problems = problems;
  }
}

export interface RelationTransformPlan {
  relation: Relation;
  /** The target table's columns: the source's, with types changed where a transform changes them. */
  targetColumns: Column[];
  /** Whether any column of this table is transformed. */
  transformed: boolean;
  /**
   * The row as the target stores it. Synchronous; returns `row` itself when
   * the table has no transformed column, otherwise a new array (the input is
   * never modified). null and UNCHANGED_TOAST pass through.
   */
  transform(row: ColumnValue[]): ColumnValue[];
  /**
   * The same transform on a row in COPY text form: only the transformed
   * columns are decoded; the new line is written to `arena`.
   */
  transformLine(row: WireRow, arena: LineArena): WireRow;
}

/** A relation's row transform, for rows of values and for rows in COPY text form. */
export type RowTransformer = Pick<RelationTransformPlan, "transform" | "transformLine">;

export interface RowTransformPlan {
  /** The plan of each relation given to planRowTransforms, by relation OID. */
  readonly relations: ReadonlyMap<number, RelationTransformPlan>;
  /** Whether any row-level transform is configured at all. */
  readonly hasRowTransforms: boolean;
  /**
   * The plan for `relation`: the planned one, or (for a table added later or
   * re-described after ALTER TABLE) a new one, validated against the same
   * rules. Throws TransformValidationError when the new shape breaks them.
   */
  forRelation(relation: Relation): RelationTransformPlan;
  /** Writes queued tokens to the vault; await before committing the batch on the target. */
  flush(): Promise<void>;
}

export interface TransformDeps {
  keys: KeyProvider;
  /** Needed when any column is tokenized. */
  vault?: TokenVault;
}

type Operation = AnonymizeMethod | "compress";

/** One named column of one transform. */
interface Rule {
  path: string;
  transformIndex: number;
  entry: string;
  op: Operation;
}

const METHODS = new Map<Method, AnonymizeMethod>([
  [Method.HASH, "hash"],
  [Method.TOKENIZE, "tokenize"],
  [Method.REDACT, "redact"],
  [Method.GENERALIZE, "generalize"],
]);

const OP_LABEL: Record<Operation, string> = {
  hash: "Hash",
  tokenize: "Tokenize",
  redact: "Redact",
  generalize: "Generalize",
  compress: "CompressColumns",
};

/** A column named alone applies to every table that has it; `table.column` and `schema.table.column` to one table. */
function names(entry: string, relation: Relation, column: Column): boolean {
  return (
    entry === column.name ||
    entry === `${relation.table}.${column.name}` ||
    entry === `${relation.schema}.${relation.table}.${column.name}`
  );
}

function qualified(relation: Relation, column?: Column): string {
  return `${relation.schema}.${relation.table}${column ? `.${column.name}` : ""}`;
}

/** Reads the row-level rules out of the transforms; Filter and Aggregate belong to another stage. */
function collectRules(transforms: Transform[], deps: TransformDeps, problems: ValidationProblem[]): Rule[] {
  const rules: Rule[] = [];
  transforms.forEach((transform, i) => {
    const t = transform.transformType;
    let op: Operation;
    if (t.case === "anonymizePii") {
      const method = METHODS.get(t.value.method);
      if (!method) {
        problems.push({
          path: `transforms[${i}].config.method`,
          message: `${t.value.method} is not an anonymization method; use HASH, TOKENIZE, REDACT or GENERALIZE.`,
        });
        return;
      }
      if (method === "tokenize" && !deps.vault) {
        problems.push({ path: `transforms[${i}].config.method`, message: "TOKENIZE needs a token vault, and none is configured." });
        return;
      }
      op = method;
    } else if (t.case === "compressColumns") {
      op = "compress";
    } else if (t.case === undefined) {
      problems.push({
        path: `transforms[${i}]`,
        message: "The transform has no type; expected AnonymizePII, Aggregate, Filter or CompressColumns.",
      });
      return;
    } else {
      return;
    }
    if (t.value.columns.length === 0) {
      problems.push({ path: `transforms[${i}].config.columns`, message: `${OP_LABEL[op]} names no columns.` });
    }
    t.value.columns.forEach((raw, j) => {
      const entry = raw.trim();
      const path = `transforms[${i}].config.columns[${j}]`;
      if (entry === "") problems.push({ path, message: "The column name is empty." });
      else rules.push({ path, transformIndex: i, entry, op });
    });
  });
  return rules;
}

interface Context {
  hashKey?: Buffer;
  tokenizer?: Tokenizer;
}

/** Plans one relation against the rules, appending any problem; returns the rules it used. */
function planRelation(
  relation: Relation,
  rules: Rule[],
  ctx: Context,
  problems: ValidationProblem[],
): { plan: RelationTransformPlan; matched: Set<Rule> } {
  const matched = new Set<Rule>();
  const steps: { index: number; column: Column; fn: ValueTransform; bytes?: FixedBytesTransform }[] = [];
  const targetColumns: Column[] = [];
  relation.columns.forEach((column, index) => {
    let chosen: Rule | undefined;
    for (const rule of rules) {
      if (!names(rule.entry, relation, column)) continue;
      matched.add(rule);
      if (!chosen) chosen = rule;
      else if (rule.transformIndex !== chosen.transformIndex) {
        // Chaining two transforms on one column is almost always a mistake
        // (and Redact-then-Hash makes no sense), so one column, one transform.
        problems.push({
          path: rule.path,
          message:
            `Column ${qualified(relation, column)} is already transformed by ` +
            `transforms[${chosen.transformIndex}]; a column takes one transform.`,
        });
      }
    }
    if (!chosen) {
      targetColumns.push(column);
      return;
    }
    const { op, path } = chosen;
    // Key columns locate rows for updates and deletes and must stay unique on
    // the target: only a keyed deterministic one-to-one mapping keeps both.
    if (column.isKey && op !== "hash" && op !== "tokenize") {
      problems.push({
        path,
        message:
          `Column ${qualified(relation, column)} is part of the table's key (replica identity); ` +
          `only Hash or Tokenize may change a key column, not ${OP_LABEL[op]}.`,
      });
      targetColumns.push(column);
      return;
    }
    if (op === "compress") {
      steps.push({ index, column, fn: compressValue });
      targetColumns.push({ ...column, ...COMPRESSED_TYPE });
      return;
    }
    const anonymizer = anonymizerFor(op, column, ctx);
    if ("unsupported" in anonymizer) {
      problems.push({ path, message: `Cannot anonymize column ${qualified(relation, column)}: ${anonymizer.unsupported}.` });
      targetColumns.push(column);
      return;
    }
    steps.push({ index, column, fn: anonymizer.fn, ...(anonymizer.bytes ? { bytes: anonymizer.bytes } : {}) });
    targetColumns.push(anonymizer.outputType ? { ...column, ...anonymizer.outputType } : column);
  });

  if (steps.length === 0) {
    const untouched = { relation, targetColumns: relation.columns, transformed: false, transform: (row: ColumnValue[]) => row };
    return { plan: { ...untouched, transformLine: (row) => row }, matched };
  }
  const transform = (row: ColumnValue[]): ColumnValue[] => {
    const out = row.slice();
    for (const step of steps) {
      const value = out[step.index];
      if (typeof value !== "string") continue; // null and UNCHANGED_TOAST are not transformed
      try {
        out[step.index] = step.fn(value);
      } catch (e) {
        // Say where, since the function's own message cannot name the column.
        throw new Error(`transforming ${qualified(relation, step.column)} failed: ${(e as Error).message}`, { cause: e });
      }
    }
    return out;
  };
  const transformLine = lineTransform(steps.map((step) => ({ ...step, describe: qualified(relation, step.column) })));
  return { plan: { relation, targetColumns, transformed: true, transform, transformLine }, matched };
}

/** Explains why a rule named no column of any relation. */
function unmatchedMessage(entry: string, relations: Relation[]): string {
  const dot = entry.lastIndexOf(".");
  if (dot > 0) {
    const tableName = entry.slice(0, dot);
    const columnName = entry.slice(dot + 1);
    const tables = relations.filter((r) => r.table === tableName || `${r.schema}.${r.table}` === tableName);
    if (tables.length > 0) return `Table ${qualified(tables[0]!)} has no column "${columnName}".`;
    return `No replicated table has a column "${entry}", and no replicated table is named "${tableName}".`;
  }
  return `No replicated table has a column "${entry}".`;
}

function sameShape(a: Relation, b: Relation): boolean {
  return (
    a.schema === b.schema &&
    a.table === b.table &&
    a.columns.length === b.columns.length &&
    a.columns.every((c, i) => {
      const d = b.columns[i];
      return d !== undefined && c.name === d.name && c.typeOid === d.typeOid && c.typeName === d.typeName && c.isKey === d.isKey;
    })
  );
}

const byPath = (a: ValidationProblem, b: ValidationProblem) => a.path.localeCompare(b.path, "en", { numeric: true });

/**
 * Validates the row-level transforms against the replicated relations and
 * plans each relation. Throws one TransformValidationError listing every problem.
 */
export async function planRowTransforms(
  tenantId: string,
  transforms: Transform[],
  relations: Relation[],
  deps: TransformDeps,
): Promise<RowTransformPlan> {
  const problems: ValidationProblem[] = [];
  const rules = collectRules(transforms, deps, problems);

  // Keys are fetched once, here, so transform() can stay synchronous.
  const ctx: Context = {};
  if (rules.some((r) => r.op === "hash")) ctx.hashKey = await deps.keys.key(tenantId, "hash");
  if (rules.some((r) => r.op === "tokenize") && deps.vault) {
    ctx.tokenizer = new Tokenizer(tenantId, await deps.keys.key(tenantId, "tokenize"), deps.vault);
  }

  const plans = new Map<number, RelationTransformPlan>();
  const used = new Set<Rule>();
  for (const relation of relations) {
    const { plan, matched } = planRelation(relation, rules, ctx, problems);
    plans.set(relation.oid, plan);
    for (const rule of matched) used.add(rule);
  }
  for (const rule of rules) {
    if (!used.has(rule)) problems.push({ path: rule.path, message: unmatchedMessage(rule.entry, relations) });
  }
  if (problems.length > 0) throw new TransformValidationError(problems.sort(byPath));

  return {
    relations: plans,
    hasRowTransforms: rules.length > 0,
    forRelation(relation) {
      const known = plans.get(relation.oid);
      if (known && (known.relation === relation || sameShape(known.relation, relation))) return known;
      const found: ValidationProblem[] = [];
      const { plan } = planRelation(relation, rules, ctx, found);
      if (found.length > 0) throw new TransformValidationError(found.sort(byPath));
      plans.set(relation.oid, plan);
      return plan;
    },
    flush: () => ctx.tokenizer?.flush() ?? Promise.resolve(),
  };
}
