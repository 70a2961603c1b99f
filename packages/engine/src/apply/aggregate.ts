// The Aggregate transform: a rolled-up table on the target (group-by columns
// with count/sum/min/max), kept current from inserts, updates and deletes.
// Statement-level triggers with transition tables on the replicated base
// table recompute exactly the groups a statement touched, in the same
// transaction as the change — so the roll-up is as exactly-once as the data,
// and a snapshot COPY updates it once, not once per row.
import { AggregateFunction, type Transform } from "@heliosdb/replication-proto";
import pg from "pg";
import { qualified } from "../source/publication";
import type { Column } from "../types";
import { createRecorded } from "./created-objects";
import type { TargetTable } from "./target-schema";

export interface AggregatePlan {
  base: TargetTable;
  rollup: string;
  groupBy: string[];
  aggregations: { sql: string; alias: string }[];
}

const FUNCTIONS: Partial<Record<AggregateFunction, string>> = {
  [AggregateFunction.COUNT]: "count",
  [AggregateFunction.SUM]: "sum",
  [AggregateFunction.MIN]: "min",
  [AggregateFunction.MAX]: "max",
};

// Types sum() accepts; min and max take any ordered type.
const SUMMABLE = /^(smallint|integer|bigint|numeric|real|double precision|money|interval)/;

/** Plans the Aggregate transforms against the target tables; returns the plans and the problems. */
export function planAggregates(transforms: Transform[], tables: TargetTable[]): [AggregatePlan[], string[]] {
  const plans: AggregatePlan[] = [];
  const problems: string[] = [];
  transforms.forEach((t, i) => {
    if (t.transformType.case !== "aggregate") return;
    const a = t.transformType.value;
    const at = `transforms[${i}].config`;
    const base = tables.find((table) => table.table === a.table);
    if (!base) {
      problems.push(`${at}.table: "${a.table}" is not a replicated table (the roll-up is computed from its replica)`);
      return;
    }
    const column = (name: string, path: string): Column | undefined => {
      const found = base.columns.find((c) => c.name === name);
      if (!found) problems.push(`${path}: "${a.table}" has no replicated column "${name}"`);
      return found;
    };
    if (a.groupBy.length === 0) problems.push(`${at}.group_by: name at least one column`);
    a.groupBy.forEach((g, j) => column(g, `${at}.group_by[${j}]`));
    if (a.aggregations.length === 0) problems.push(`${at}.aggregations: name at least one aggregate`);
    const aggregations = a.aggregations.flatMap((agg, j) => {
      const path = `${at}.aggregations[${j}]`;
      const fn = FUNCTIONS[agg.function];
      if (!fn) {
        problems.push(`${path}.function: choose Count, Sum, Min or Max`);
        return [];
      }
      if (!agg.column && fn !== "count") {
        problems.push(`${path}.column: ${fn} needs a column`);
        return [];
      }
      const c = agg.column ? column(agg.column, `${path}.column`) : undefined;
      if (agg.column && !c) return [];
      if (fn === "sum" && c && !SUMMABLE.test(c.typeName)) {
        problems.push(`${path}.column: cannot sum "${c.name}" of type ${c.typeName}`);
        return [];
      }
      const alias = agg.alias || (c ? `${fn}_${c.name}` : fn);
      return [{ sql: c ? `${fn}(b.${pg.escapeIdentifier(c.name)})` : "count(*)", alias }];
    });
    const aliases = aggregations.map((x) => x.alias);
    if (new Set([...aliases, ...a.groupBy]).size !== aliases.length + a.groupBy.length) {
      problems.push(`${at}.aggregations: column names of the roll-up must be distinct`);
    }
    plans.push({ base, rollup: a.targetTable || `${a.table}_rollup`, groupBy: a.groupBy, aggregations });
  });
  return [plans, problems];
}

/**
 * Creates the roll-up table (its types derived by PostgreSQL from the query)
 * and the triggers that keep it current, then fills it from the base table.
 */
export async function installAggregate(client: pg.ClientBase, plan: AggregatePlan, replicationId: string): Promise<void> {
  const schema = plan.base.schema;
  const base = qualified(plan.base);
  const rollup = qualified({ schema, table: plan.rollup });
  const groups = plan.groupBy.map((g) => pg.escapeIdentifier(g));
  const select = `SELECT ${groups.map((g) => `b.${g}`).join(", ")}, ${plan.aggregations
    .map((a) => `${a.sql} AS ${pg.escapeIdentifier(a.alias)}`)
    .join(", ")} FROM ${base} b`;
  const groupBy = `GROUP BY ${groups.map((g) => `b.${g}`).join(", ")}`;
  await createRecorded(client, replicationId, { kind: "table", schema, name: plan.rollup }, () =>
    client.query(`CREATE TABLE ${rollup} AS ${select} ${groupBy} WITH NO DATA`),
  );
  const constraint = pg.escapeIdentifier(`${plan.rollup}_groups`.slice(0, 63));
  await client.query(`DO ${dollarQuoted(`BEGIN
      ALTER TABLE ${rollup} ADD CONSTRAINT ${constraint} UNIQUE NULLS NOT DISTINCT (${groups.join(", ")});
    EXCEPTION WHEN duplicate_table OR duplicate_object THEN NULL; END`)}`);
  // The groups a statement touched, recomputed from the base table.
  const matches = (alias: string) => groups.map((g) => `${alias}.${g} IS NOT DISTINCT FROM c.${g}`).join(" AND ");
  const recompute = (changed: string) => `
      DELETE FROM ${rollup} r WHERE EXISTS (SELECT 1 FROM (${changed}) c WHERE ${matches("r")});
      INSERT INTO ${rollup} ${select} WHERE EXISTS (SELECT 1 FROM (${changed}) c WHERE ${matches("b")}) ${groupBy};`;
  const prefix = `heliosdb_rollup_${plan.base.table}_${plan.rollup}`.slice(0, 50);
  const events: [string, string, string][] = [
    ["insert", "REFERENCING NEW TABLE AS new_rows", recompute("SELECT * FROM new_rows")],
    ["update", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows", recompute("SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows")],
    ["delete", "REFERENCING OLD TABLE AS old_rows", recompute("SELECT * FROM old_rows")],
    ["truncate", "", `DELETE FROM ${rollup};`],
  ];
  for (const [event, referencing, body] of events) {
    const fn = qualified({ schema, table: `${prefix}_${event}` });
    const trigger = pg.escapeIdentifier(`${prefix}_${event}`);
    const createFunction = () =>
      client.query(`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS ${dollarQuoted(`BEGIN ${body} RETURN NULL; END`)}`);
    const createTrigger = () =>
      client.query(`CREATE OR REPLACE TRIGGER ${trigger} AFTER ${event.toUpperCase()} ON ${base} ${referencing}
      FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`);
    // Replaced at every start (the body follows the plan); recorded when this replication made them first.
    if (!(await createRecorded(client, replicationId, { kind: "function", schema, name: `${prefix}_${event}` }, createFunction))) await createFunction();
    const onTable = { kind: "trigger", schema, name: `${prefix}_${event}`, table: plan.base.table } as const;
    if (!(await createRecorded(client, replicationId, onTable, createTrigger))) await createTrigger();
  }
  await client.query(`DELETE FROM ${rollup}`);
  await client.query(`INSERT INTO ${rollup} ${select} ${groupBy}`);
}

// A dollar-quoted literal whose tag the body does not contain: table and
// column names come from the source, and a name may hold "$$".
function dollarQuoted(body: string): string {
  let tag = "$heliosdb$";
  for (let i = 0; body.includes(tag); i++) tag = `$heliosdb${i}$`;
  return `${tag}${body}${tag}`;
}
