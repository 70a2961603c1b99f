// Sequences at a cutover. Logical decoding carries rows, not sequence
// values: a replica's sequences (if it has any) stay where they were created,
// and the first insert with a default id after a switch would collide with a
// row the source already wrote. syncSequences copies, after the fence, the
// position of every sequence the tenant's tables draw from — owned by a
// column (serial), behind an identity column, or named in a column default's
// nextval() — to the matching column's sequence on the target.
//
// The position read is the sequence relation's own (last_value, is_called),
// which nextval() updates outside any transaction: it counts values handed to
// transactions that rolled back, and values cached by sessions (CACHE > 1),
// so the target never hands out an id the source handed out. A target
// sequence already further on is left alone: a sequence never moves back.
//
// A target column that draws from no sequence (the engine creates target
// tables from the source's columns only) gets one: a sequence with the
// source's definition and name in the target schema, owned by the column
// when the source's is, and a `DEFAULT nextval(…)` — also for a source
// identity column, so that the applier's explicit values are still accepted.
import pg from "pg";
import { sqlStateOf } from "../failure";
import { qualified } from "../source/publication";
import { open, resolveTables, type TenantDatabase } from "./tables";

export interface SequenceSync {
  /** The source sequence, schema-qualified. */
  source: string;
  /** The target sequence it was copied to. */
  target: string;
  /** The target columns that draw from it, as table.column. */
  columns: string[];
  /** The source position copied: the last value handed out (when isCalled) or the next one. */
  lastValue: bigint;
  isCalled: boolean;
  /** set: moved to the source's position; created: made on the target, then set; kept: the target was already as far or further. */
  action: "set" | "created" | "kept";
}

interface ColumnSequence {
  table: string;
  column: string;
  kind: "identity" | "owned" | "default";
  schema: string;
  name: string;
  type: string;
  start: string;
  increment: bigint;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
}

/**
 * Which target sequence each source sequence's position goes to, resolved
 * from both catalogs (and the target's missing sequences made): a cutover
 * plans before its fence, so that inside its window syncSequences only reads
 * the positions and sets them — two round trips instead of seven or more.
 * Plain data (a job saves it: types, not interfaces, so that it is JSON to TypeScript too).
 */
export type SequencePlan = {
  moves: { source: SequenceName; targets: { name: SequenceName; columns: string[]; created: boolean }[] }[];
};

/** Resolves what syncSequences would position (see SequencePlan); makes the target's missing sequences unless told not to. */
export async function planSequences(
  source: TenantDatabase,
  target: TenantDatabase,
  tables: readonly string[],
  options: { createMissing?: boolean } = {},
): Promise<SequencePlan> {
  return withBoth(source, target, (from, to) => resolvePlan(from, to, source, target, tables, options.createMissing !== false));
}

/**
 * Copies the positions of the sequences `tables` (names in `source.schema`;
 * the same names in `target.schema`) use, from source to target. Run it
 * after the fence: a write on the source after the copy could take a value
 * the target hands out again. With a `plan` made before (planSequences),
 * only the positions are read and set; a plan the catalogs no longer match
 * (a sequence dropped since) is made again.
 */
export async function syncSequences(
  source: TenantDatabase,
  target: TenantDatabase,
  tables: readonly string[],
  options: { createMissing?: boolean; plan?: SequencePlan } = {},
): Promise<SequenceSync[]> {
  return withBoth(source, target, async (from, to) => {
    const fresh = () => resolvePlan(from, to, source, target, tables, options.createMissing !== false);
    if (!options.plan) return position(from, to, await fresh());
    try {
      return await position(from, to, options.plan);
    } catch (e) {
      if (sqlStateOf(e) !== UNDEFINED_TABLE) throw e;
      return position(from, to, await fresh());
    }
  });
}

const UNDEFINED_TABLE = "42P01";

// Both sessions opened at once (a cutover calls this inside its downtime, where each round trip is time the
// tenant's writes wait), and ended after `f`.
async function withBoth<T>(source: TenantDatabase, target: TenantDatabase, f: (from: pg.Client, to: pg.Client) => Promise<T>): Promise<T> {
  const opened = await Promise.allSettled([open(source, "heliosdb_sync_sequences"), open(target, "heliosdb_sync_sequences")]);
  const failed = opened.find((o): o is PromiseRejectedResult => o.status === "rejected");
  if (failed) {
    for (const o of opened) if (o.status === "fulfilled") await o.value.end().catch(() => undefined);
    throw failed.reason;
  }
  const [from, to] = opened.map((o) => (o as PromiseFulfilledResult<pg.Client>).value) as [pg.Client, pg.Client];
  try {
    return await f(from, to);
  } finally {
    await Promise.all([from.end().catch(() => undefined), to.end().catch(() => undefined)]);
  }
}

// Both catalogs read at once; each source sequence matched to the target sequences its columns draw from there,
// a missing one made (createMissing).
async function resolvePlan(
  from: pg.Client,
  to: pg.Client,
  source: TenantDatabase,
  target: TenantDatabase,
  tables: readonly string[],
  createMissing: boolean,
): Promise<SequencePlan> {
  const [used, onTarget] = await Promise.all([
    (async () => columnSequences(from, (await resolveTables(from, source.schema, tables)).map((t) => t.oid)))(),
    (async () => columnSequences(to, (await resolveTables(to, target.schema, tables)).map((t) => t.oid)))(),
  ]);
  const moves: SequencePlan["moves"] = [];
  for (const seq of unique(used)) {
    const columns = used.filter((u) => nameOf(u) === nameOf(seq));
    // Each target sequence the columns draw from, and the columns that draw from none.
    const targets = new Map<string, { name: SequenceName; columns: string[]; created: boolean }>();
    const drawnBy = (name: SequenceName, c: ColumnSequence, created = false) => {
      let entry = targets.get(nameOf(name));
      if (!entry) targets.set(nameOf(name), (entry = { name: { schema: name.schema, name: name.name }, columns: [], created }));
      entry.columns.push(`${c.table}.${c.column}`);
    };
    const bare: ColumnSequence[] = [];
    for (const c of columns) {
      const t = onTarget.find((o) => o.table === c.table && o.column === c.column);
      if (t) drawnBy(t, c);
      else bare.push(c);
    }
    if (bare.length > 0 && createMissing) {
      const made = await createSequence(to, target.schema, seq, bare);
      for (const c of bare) drawnBy(made, c, true);
    }
    moves.push({ source: { schema: seq.schema, name: seq.name }, targets: [...targets.values()] });
  }
  return { moves };
}

// The source's positions read (one statement), then every target moved forward to them (one statement).
async function position(from: pg.Client, to: pg.Client, plan: SequencePlan): Promise<SequenceSync[]> {
  const positions = await readPositions(from, plan.moves.map((m) => m.source));
  const pairs = plan.moves.flatMap((m, i) => m.targets.map((t) => ({ move: m, target: t, position: positions[i]! })));
  const moved = await moveForward(to, pairs.map((p) => ({ name: p.target.name, position: p.position })));
  return pairs.map((p, k) => ({
    source: nameOf(p.move.source),
    target: nameOf(p.target.name),
    columns: p.target.columns,
    lastValue: p.position.lastValue,
    isCalled: p.position.isCalled,
    action: p.target.created ? "created" : moved[k] ? "set" : "kept",
  }));
}

// Every (column, sequence) pair of the tables: serial ownership and identity
// are dependencies of the sequence on the column; a default's nextval('seq')
// is a dependency of the default on the sequence.
async function columnSequences(client: pg.ClientBase, oids: number[]): Promise<ColumnSequence[]> {
  const { rows } = await client.query<Omit<ColumnSequence, "increment"> & { increment: string }>(
    `WITH uses AS (
       SELECT d.refobjid AS relid, d.refobjsubid AS attnum, d.objid AS seqid,
              CASE d.deptype WHEN 'i' THEN 'identity' ELSE 'owned' END AS kind
         FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = ANY($1::oid[]) AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
       UNION
       SELECT ad.adrelid, ad.adnum, d.refobjid, 'default'
         FROM pg_attrdef ad
         JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
        WHERE ad.adrelid = ANY($1::oid[]))
     SELECT c.relname AS table, a.attname AS column, u.kind, sn.nspname AS schema, s.relname AS name,
            format_type(q.seqtypid, NULL) AS type, q.seqstart::text AS start, q.seqincrement::text AS increment,
            q.seqmin::text AS min, q.seqmax::text AS max, q.seqcache::text AS cache, q.seqcycle AS cycle
       FROM uses u
       JOIN pg_class s ON s.oid = u.seqid AND s.relkind = 'S'
       JOIN pg_namespace sn ON sn.oid = s.relnamespace
       JOIN pg_sequence q ON q.seqrelid = s.oid
       JOIN pg_class c ON c.oid = u.relid
       JOIN pg_attribute a ON a.attrelid = u.relid AND a.attnum = u.attnum
      ORDER BY c.relname, a.attnum, u.kind DESC`,
    [oids],
  );
  // A serial column appears as owned and as default: keep one row per column and sequence, identity before owned before default.
  const rank = { identity: 0, owned: 1, default: 2 };
  const best = new Map<string, ColumnSequence>();
  for (const r of rows) {
    const key = `${r.table}\u0000${r.column}\u0000${r.schema}\u0000${r.name}`;
    const prior = best.get(key);
    if (!prior || rank[r.kind] < rank[prior.kind]) best.set(key, { ...r, increment: BigInt(r.increment) });
  }
  return [...best.values()];
}

export type SequenceName = {
  schema: string;
  name: string;
};

function nameOf(s: SequenceName): string {
  return `${s.schema}.${s.name}`;
}

function sqlName(s: SequenceName): string {
  return qualified({ schema: s.schema, table: s.name });
}

function unique(sequences: ColumnSequence[]): ColumnSequence[] {
  const seen = new Map<string, ColumnSequence>();
  for (const s of sequences) if (!seen.has(nameOf(s))) seen.set(nameOf(s), s);
  return [...seen.values()];
}

interface Position {
  lastValue: bigint;
  isCalled: boolean;
  increment: bigint;
}

// Read from the sequence relations themselves, all in one statement.
async function readPositions(client: pg.ClientBase, names: SequenceName[]): Promise<Position[]> {
  if (names.length === 0) return [];
  const parts = names.map(
    (n, i) => `SELECT ${i} AS i, s.last_value::text AS last_value, s.is_called, q.seqincrement::text AS increment
                 FROM ${sqlName(n)} s, pg_sequence q WHERE q.seqrelid = ${pg.escapeLiteral(sqlName(n))}::regclass`,
  );
  const { rows } = await client.query<{ i: number; last_value: string; is_called: boolean; increment: string }>(parts.join(" UNION ALL "));
  const positions: Position[] = [];
  for (const r of rows) positions[r.i] = { lastValue: BigInt(r.last_value), isCalled: r.is_called, increment: BigInt(r.increment) };
  return positions;
}

// Sets each target sequence to its source's position unless it is already as
// far or further (in the target's direction), all in one statement: CASE runs
// setval only where the target is behind. Returns, for each, whether it moved.
async function moveForward(client: pg.ClientBase, moves: { name: SequenceName; position: Position }[]): Promise<boolean[]> {
  if (moves.length === 0) return [];
  const parts = moves.map(({ name, position: p }, i) => {
    const seq = pg.escapeLiteral(sqlName(name));
    // How far a position is along the sequence: the next value it hands out, signed by direction (numeric: no overflow).
    const along = (value: string, called: string) => `((${value})::numeric + CASE WHEN ${called} THEN q.seqincrement ELSE 0 END) * sign(q.seqincrement)`;
    return `SELECT ${i} AS i, CASE WHEN ${along("s.last_value", "s.is_called")} < ${along(p.lastValue.toString(), String(p.isCalled))}
              THEN setval(${seq}::regclass, ${p.lastValue.toString()}::bigint, ${String(p.isCalled)}) IS NOT NULL ELSE false END AS moved
              FROM ${sqlName(name)} s, pg_sequence q WHERE q.seqrelid = ${seq}::regclass`;
  });
  const { rows } = await client.query<{ i: number; moved: boolean }>(parts.join(" UNION ALL "));
  const moved: boolean[] = [];
  for (const r of rows) moved[r.i] = r.moved;
  return moved;
}

// A sequence like the source's, in the target schema, drawn from by `columns`' defaults.
async function createSequence(client: pg.ClientBase, schema: string, seq: ColumnSequence, columns: ColumnSequence[]): Promise<SequenceName> {
  const made = { schema, name: seq.name };
  const name = sqlName(made);
  const owner = seq.kind !== "default" && columns.length === 1 ? columns[0]! : undefined;
  await client.query("BEGIN");
  try {
    await client.query(
      `CREATE SEQUENCE IF NOT EXISTS ${name} AS ${seq.type} INCREMENT BY ${seq.increment} MINVALUE ${seq.min} MAXVALUE ${seq.max}
         START WITH ${seq.start} CACHE ${seq.cache} ${seq.cycle ? "CYCLE" : "NO CYCLE"}`,
    );
    if (owner) await client.query(`ALTER SEQUENCE ${name} OWNED BY ${qualified({ schema, table: owner.table })}.${pg.escapeIdentifier(owner.column)}`);
    for (const c of columns) {
      await client.query(`ALTER TABLE ${qualified({ schema, table: c.table })} ALTER COLUMN ${pg.escapeIdentifier(c.column)} SET DEFAULT nextval(${pg.escapeLiteral(name)}::regclass)`);
    }
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  }
  return made;
}
