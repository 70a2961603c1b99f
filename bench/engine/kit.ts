// What the engine benchmark's cases share (main.ts runs them): the command
// line's settings, the log, the users table and its server-side generators,
// the two clusters and helpers on them, and the engine with the configs it
// is measured under.
import { randomBytes, randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  AnonymizePIITransform_AnonymizationMethod as Method,
  CompressionConfig_CompressionLevel as Level,
  QoSTier,
  ReplicationConfigSchema,
} from "@heliosdb/replication-proto";
import pg from "pg";
import { MasterKeyProvider, ReplicationPipeline, type EngineEvent, type ReplicationSpec } from "../../packages/engine/src/index";
import type { Cluster } from "../../packages/engine/src/testing/clusters";
import { cpuMeter as meterOf } from "./cpu";
import { startTracing, traceReport as reportTrace } from "./trace";
import { round, sleep } from "./util";

// ---------------------------------------------------------------- settings

export const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
export const QUICK = args.has("quick");
export const num = (name: string, full: number, quick: number) => Number(args.get(name) ?? (QUICK ? quick : full));
/** Rows of the initial sync table. */
export const ROWS = num("rows", 1_000_000, 100_000);
/** Row changes of the CDC runs in 10k-row transactions. */
export const CDC_ROWS = num("cdc-rows", 1_000_000, 100_000);
export const CDC_TX_ROWS = 10_000;
/** Single-row transactions of the CDC runs. */
export const SINGLE_ROWS = num("single-rows", 1_000_000, 100_000);
/** The steady writer of the lag run: ROWS_PER_TICK rows every TICK_MS. */
export const LAG_SECONDS = num("lag-seconds", 20, 5);
export const LAG_ROWS_PER_TICK = 100;
export const LAG_TICK_MS = 10;
export const LAG_POLL_MS = 20;
export const FIGURES_POLL_MS = 50;
/** Runs of each initial sync (engine and baselines interleaved); the median is reported. */
export const SYNC_REPS = num("reps", 3, 3);
/** Many tenants on one node: how many replications, how long at rest and under load, and their QoS tier. */
export const TENANTS = (args.get("tenants") ?? (QUICK ? "1,10" : "1,10,100")).split(",").map(Number);
export const TENANT_SECONDS = num("tenant-seconds", 20, 5);
export const TENANT_REST_SECONDS = num("tenant-rest-seconds", 10, 5);
export const TENANT_TIER = args.get("tenant-tier") ?? "premium";
/** Whether the tenants part runs the source, the target and the node in CPU groups of their own (../cpu-groups.ts). */
export const TENANT_CPU_GROUPS = args.get("cpu-groups") !== "off";
export const ONLY = new Set((args.get("only") ?? "codecs,sync,cdc,single,lag,spec,tenants").split(","));

export const started = Date.now();
export const keys = new MasterKeyProvider(randomBytes(32));
export const TENANT = "tenant-123";

// ---------------------------------------------------------------- output

export const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
export const fmtRate = (x: number) => `${Math.round(x).toLocaleString("en-US")}`;

// ---------------------------------------------------------------- schema

// ~200 bytes a row in COPY text (and about as much on the heap): a bigint key,
// text columns (three of them PII), a numeric, a longer text and a timestamp.
export const COLUMNS = ["id", "name", "email", "phone", "ssn", "region", "balance", "bio", "written_at"] as const;
export const COLUMN_DEFS = `id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, phone text NOT NULL, ssn text NOT NULL,
  region text NOT NULL, balance numeric(14,2) NOT NULL, bio text NOT NULL, written_at timestamptz NOT NULL`;
/** The source table; written_at defaults to the time each row is written. */
export const SOURCE_TABLE = `CREATE TABLE users (${COLUMN_DEFS} DEFAULT clock_timestamp())`;
/** The target table as the engine creates it (same columns, key and NOT NULLs), for the baselines. */
export const TARGET_TABLE = `CREATE TABLE users (${COLUMN_DEFS})`;
/** Rows g in [a, b]. */
export const rowsSelect = (a: string, b: string) => `
  SELECT g, 'user ' || g, 'user' || g || '@example.com', '+1-555-' || lpad((g % 10000000)::text, 7, '0'),
         lpad((g * 7919 % 1000000000)::text, 9, '0'), (ARRAY['us', 'eu', 'ap'])[1 + g % 3], round((g % 100000) * 1.37, 2),
         md5(g::text) || ' ' || md5((g + 1)::text) || ' lorem ipsum dolor sit amet', clock_timestamp()
    FROM generate_series((${a})::bigint, (${b})::bigint) g`;

/**
 * rows_per_tick rows (one statement, one transaction) every tick_ms on a
 * fixed schedule, begun offset_ms late: the lag run's writer, and each
 * tenant's (tenants.ts: one row a tick, tenants not writing in step).
 */
export const STEADY_WRITER = `
  CREATE PROCEDURE steady_writer(first bigint, rows_per_tick int, tick_ms int, duration_ms int, offset_ms int DEFAULT 0) LANGUAGE plpgsql AS $$
  DECLARE
    t0 timestamptz;
    k int := 0;
    wait float8;
  BEGIN
    PERFORM pg_sleep(offset_ms / 1000.0);
    t0 := clock_timestamp();
    WHILE clock_timestamp() < t0 + duration_ms * interval '1 ms' LOOP
      INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("first + k * rows_per_tick", "first + (k + 1) * rows_per_tick - 1")};
      COMMIT;
      k := k + 1;
      wait := extract(epoch FROM t0 + k * tick_ms * interval '1 ms' - clock_timestamp());
      IF wait > 0 THEN PERFORM pg_sleep(wait); END IF;
    END LOOP;
  END $$;`;

// Server-side generators: no client round trip per transaction.
export const PROCEDURES = `
  CREATE PROCEDURE gen_changes(first bigint, total bigint, per_tx int) LANGUAGE plpgsql AS $$
  DECLARE
    i bigint := first;
  BEGIN
    WHILE i < first + total LOOP
      INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("i", "least(i + per_tx, first + total) - 1")};
      COMMIT;
      i := i + per_tx;
    END LOOP;
  END $$;
  CREATE PROCEDURE gen_one_row_txs(first bigint, total bigint) LANGUAGE plpgsql AS $$
  BEGIN
    FOR i IN first .. first + total - 1 LOOP
      INSERT INTO users (${COLUMNS.join(", ")}) ${rowsSelect("i", "i")};
      COMMIT;
    END LOOP;
  END $$;
  ${STEADY_WRITER}`;

// On the target: every poll_ms, now − the written_at of the newest replicated row.
export const LAG_POLLER = `
  CREATE TABLE bench_lag (at timestamptz NOT NULL, lag_ms float8 NOT NULL);
  CREATE PROCEDURE lag_poller(poll_ms int, duration_ms int) LANGUAGE plpgsql AS $$
  DECLARE
    t0 timestamptz := clock_timestamp();
    newest timestamptz;
  BEGIN
    WHILE clock_timestamp() < t0 + duration_ms * interval '1 ms' LOOP
      SELECT written_at INTO newest FROM users ORDER BY id DESC LIMIT 1;
      IF newest IS NOT NULL THEN
        INSERT INTO bench_lag VALUES (clock_timestamp(), extract(epoch FROM clock_timestamp() - newest) * 1000);
      END IF;
      COMMIT;
      PERFORM pg_sleep(poll_ms / 1000.0);
    END LOOP;
  END $$;`;

// ---------------------------------------------------------------- helpers

export let source!: Cluster;
export let target!: Cluster;
export let dbCounter = 0;

/** The clusters the cases run on (main.ts starts them, and again, with room for 100 replications, for the tenants part). */
export function useClusters(clusters: { source: Cluster; target: Cluster }): void {
  ({ source, target } = clusters);
}

if (args.has("trace-queries")) startTracing();
export const traceReport = (what: string, wallSeconds: number) => reportTrace(log, what, wallSeconds);
/** CPU seconds of the source and target clusters and of this process from now on (cpu.ts). */
export const cpuMeter = () => meterOf({ source, target });

/** Polls `check` every `everyMs` until it returns true; fails after `ms`. */
export async function until(check: () => Promise<boolean> | boolean, what: string, ms = 1_800_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function freshDb(cluster: Cluster, prefix: string): Promise<string> {
  const name = `${prefix}_${++dbCounter}`;
  await cluster.createDatabase(name);
  return name;
}

export async function dropDb(cluster: Cluster, name: string): Promise<void> {
  const c = await cluster.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export async function withClient<T>(cluster: Cluster, db: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await cluster.connect(db);
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

export const one = async <T = string>(c: pg.ClientBase, sql: string, params: unknown[] = []): Promise<T> =>
  Object.values((await c.query(sql, params)).rows[0] ?? {})[0] as T;


// ---------------------------------------------------------------- engine

export type Config = MessageInitShape<typeof ReplicationConfigSchema>;

/** What the baselines do: no transforms, compression or encryption. */
export const PLAIN_STANDARD: Config = { qosTier: QoSTier.STANDARD, maxLagSeconds: 5 };
export const PLAIN_PREMIUM: Config = { qosTier: QoSTier.PREMIUM, maxLagSeconds: 5 };
/**
 * The spec's §2.1.1 request config. Its table_filter names users, orders and
 * products; this benchmark's database has only `users`, and a pattern that
 * matches nothing is refused by preflight, so the filter is ["users.*"].
 */
export const SPEC_2_1_1: Config = {
  qosTier: QoSTier.PREMIUM,
  maxLagSeconds: 5,
  priority: 90,
  tableFilter: ["users.*"],
  rowFilter: { enabled: false },
  transforms: [{ transformType: { case: "anonymizePii", value: { columns: ["email", "phone", "ssn"], method: Method.HASH } } }],
  compression: { enabled: true, level: Level.MEDIUM },
  encryption: { enabled: true, algorithm: "AES256GCM" },
};

export interface Engine {
  pipeline: ReplicationPipeline;
  events: EngineEvent[];
  /** Throws if the engine reported an error. */
  check(): void;
}

export function engine(sourceDb: string, targetDb: string, config: Config): Engine {
  const events: EngineEvent[] = [];
  const spec: ReplicationSpec = {
    replicationId: randomUUID(),
    tenantId: TENANT,
    source: { connection: { connectionString: source.url(sourceDb) }, schema: "public" },
    target: { connection: { connectionString: target.url(targetDb) }, schema: "public" },
    config: create(ReplicationConfigSchema, config),
  };
  const pipeline = new ReplicationPipeline(spec, { keys, onEvent: (e) => events.push(e) });
  return {
    pipeline,
    events,
    check() {
      const error = events.find((e) => e.severity === "Error" || e.severity === "Critical");
      if (error || pipeline.status === "Error") throw new Error(`engine failed: ${error?.message ?? pipeline.status}`);
    },
  };
}

/** A source database with the users table and the generators, and an empty target database. */
export async function cdcDatabases(prefix: string): Promise<{ sourceDb: string; targetDb: string }> {
  const [sourceDb, targetDb] = await Promise.all([freshDb(source, `${prefix}_src`), freshDb(target, `${prefix}_dst`)]);
  await withClient(source, sourceDb, async (c) => {
    await c.query(SOURCE_TABLE);
    await c.query(PROCEDURES);
  });
  return { sourceDb, targetDb };
}
