// Everything a replication needs before data moves, checked against the real
// source catalog: preflight, the table filter, the transforms, and the
// publication that carries the row filter. Problems are reported together.
import { QoSTier, type ReplicationConfig, type Transform } from "@heliosdb/replication-proto";
import type pg from "pg";
import { planAggregates } from "../apply/aggregate";
import type { TargetTable } from "../apply/target-schema";
import { readCatalog, type CatalogTable } from "../source/catalog";
import { checkSource, checkTables, PreflightError, type PreflightProblem } from "../source/preflight";
import { checkPublication, ensurePublication, type PublicationChange, type PublishedTable, type RowExpressions } from "../source/publication";
import { applyTableFilter, unmatchedPatterns } from "../source/table-filter";
import { planRowTransforms, TransformValidationError, type RowTransformPlan, type TransformDeps } from "../transform/plan";

export interface Setup {
  serverVersion: number;
  tables: CatalogTable[];
  published: PublishedTable[];
  /** What this start changed in the publication. */
  change: PublicationChange;
  plan: RowTransformPlan;
  /** What is allowed but probably unintended (a filter pattern that matches nothing yet). */
  warnings: string[];
}

/** Validates a replication against its source without creating anything. */
export async function validate(
  source: pg.ClientBase,
  slotName: string,
  schema: string,
  tenantId: string,
  config: ReplicationConfig,
  deps: TransformDeps,
): Promise<Omit<Setup, "published" | "change">> {
  const [server, problems] = await checkSource(source, slotName);
  const catalog = await readCatalog(source, schema);
  const tables = applyTableFilter(catalog, config.tableFilter);
  // A pattern that matches nothing is allowed (its tables may come later) but said.
  const warnings = unmatchedPatterns(catalog, config.tableFilter).map(
    (pattern) => `table_filter pattern "${pattern}" matches no column of schema "${schema}" yet`,
  );
  problems.push(...checkTables(tables, schema));
  if (config.rowFilter?.enabled && !config.rowFilter.expression.trim()) {
    problems.push({ code: "ROW_FILTER", message: "row_filter is enabled but has no expression" });
  }
  if (server.version < 150000 && tables.some((t) => t.columnsFiltered)) {
    problems.push({ code: "TABLE_FILTER", message: "column filters (table.column) need PostgreSQL 15 or later on the source" });
  }
  if (config.qosTier === QoSTier.SYNCHRONOUS && !server.superuser) {
    problems.push({
      code: "SYNCHRONOUS",
      message: "the Synchronous tier sets the source's synchronous_standby_names, which needs a superuser connection",
    });
  }
  if (config.rowFilter?.enabled && server.version < 150000) {
    problems.push({ code: "ROW_FILTER", message: "row filters need PostgreSQL 15 or later on the source" });
  }
  problems.push(...untyped(config.transforms));
  config.transforms.forEach((t, i) => {
    if (t.transformType.case !== "filter") return;
    const { table, expression } = t.transformType.value;
    if (!tables.some((c) => c.table === table)) {
      problems.push({ code: "TRANSFORM", message: `transforms[${i}].config.table: no replicated table is named "${table}"` });
    }
    if (!expression.trim()) problems.push({ code: "TRANSFORM", message: `transforms[${i}].config.expression: empty` });
  });
  let plan: RowTransformPlan | undefined;
  try {
    plan = await planRowTransforms(tenantId, config.transforms, tables, deps);
  } catch (e) {
    if (!(e instanceof TransformValidationError)) throw e;
    problems.push(...e.problems.map((p) => ({ code: "TRANSFORM", message: `${p.path}: ${p.message}` })));
  }
  if (plan) {
    const [, aggregateProblems] = planAggregates(config.transforms, targetTables(tables, plan, schema));
    problems.push(...aggregateProblems.map((message) => ({ code: "TRANSFORM", message })));
  }
  if (problems.length > 0 || !plan) throw new PreflightError(problems);
  // PostgreSQL's own verdict on the row filters and column lists, now rather than at the first start.
  await checkPublication(source, tables, rowExpressions(config), server.version);
  return { serverVersion: server.version, tables, plan, warnings };
}

/**
 * Validates, then brings the publication in line with the configuration (in
 * place; see ensurePublication). `beforeCommit` learns which tables must be
 * copied again before the change is committed.
 */
export async function prepare(
  source: pg.ClientBase,
  names: { slot: string; publication: string },
  schema: string,
  tenantId: string,
  config: ReplicationConfig,
  deps: TransformDeps,
  beforeCommit?: (change: PublicationChange) => Promise<void>,
): Promise<Setup> {
  const checked = await validate(source, names.slot, schema, tenantId, config, deps);
  const { published, change } = await ensurePublication(source, names.publication, checked.tables, rowExpressions(config), checked.serverVersion, beforeCommit);
  return { ...checked, published, change };
}

// The row filter, and the Filter transforms' predicates by table.
function rowExpressions(config: ReplicationConfig): RowExpressions {
  const drop = new Map<string, string[]>();
  for (const t of config.transforms) {
    if (t.transformType.case !== "filter") continue;
    const { table, expression } = t.transformType.value;
    drop.set(table, [...(drop.get(table) ?? []), expression]);
  }
  return {
    ...(config.rowFilter?.enabled ? { rowFilter: config.rowFilter.expression } : {}),
    drop,
  };
}

function untyped(transforms: Transform[]): PreflightProblem[] {
  return transforms.flatMap((t, i) =>
    t.transformType.case === undefined ? [{ code: "TRANSFORM", message: `transforms[${i}]: the transform has no type` }] : [],
  );
}

/** The tables as the target stores them (row transforms may change types), in `schema`. */
export function targetTables(tables: CatalogTable[], plan: RowTransformPlan, schema: string): TargetTable[] {
  return tables.map((t) => ({ schema, table: t.table, columns: plan.forRelation(t).targetColumns }));
}
