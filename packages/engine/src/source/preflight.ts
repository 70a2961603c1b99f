// Checks, before anything is created, that a replication can run: each
// problem found is reported with what to do about it, all at once.
import type pg from "pg";
import type { CatalogTable } from "./catalog";

export interface PreflightProblem {
  /** A stable code for programs: WAL_LEVEL, REPLICATION_PRIVILEGE, NO_FREE_SLOT, ... */
  code: string;
  message: string;
}

export class PreflightError extends Error {
  override readonly name = "PreflightError";
  constructor(readonly problems: PreflightProblem[]) {
    super(problems.map((p) => p.message).join("; "));
  }
}

/** Facts about the source server that the checks and the pipeline need. */
export interface SourceServer {
  /** server_version_num, e.g. 180004. */
  version: number;
  /** Whether the role may ALTER SYSTEM (the Synchronous tier needs it). */
  superuser: boolean;
}

/** The source server's settings and the role's rights. */
export async function checkSource(client: pg.ClientBase, slotName: string): Promise<[SourceServer, PreflightProblem[]]> {
  const { rows } = await client.query<{
    version: number;
    wal_level: string;
    can_replicate: boolean;
    superuser: boolean;
    free_slots: number;
    slot_exists: boolean;
  }>(
    `SELECT current_setting('server_version_num')::int AS version,
            current_setting('wal_level') AS wal_level,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
            current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free_slots,
            EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS slot_exists`,
    [slotName],
  );
  const s = rows[0]!;
  const problems: PreflightProblem[] = [];
  if (s.version < 140000) {
    problems.push({ code: "VERSION", message: `the source runs PostgreSQL ${Math.floor(s.version / 10000)}; 14 or later is needed` });
  }
  if (s.wal_level !== "logical") {
    problems.push({
      code: "WAL_LEVEL",
      message: `wal_level is '${s.wal_level}' on the source; set wal_level = logical and restart PostgreSQL`,
    });
  }
  if (!s.can_replicate) {
    problems.push({
      code: "REPLICATION_PRIVILEGE",
      message: "the source user lacks the REPLICATION attribute: ALTER ROLE <user> REPLICATION",
    });
  }
  if (s.free_slots <= 0 && !s.slot_exists) {
    problems.push({
      code: "NO_FREE_SLOT",
      message: "every replication slot of the source is in use: raise max_replication_slots or drop an unused slot",
    });
  }
  return [{ version: s.version, superuser: s.superuser }, problems];
}

/** Problems of the tables to replicate: no key, types the target may lack. */
export function checkTables(tables: CatalogTable[], schema: string): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  if (tables.length === 0) {
    problems.push({ code: "NO_TABLES", message: `no table of schema "${schema}" matches the table filter` });
  }
  for (const t of tables) {
    if (!t.hasKey) {
      problems.push({
        code: "NO_KEY",
        message:
          `table ${t.table} has no primary key or replica identity index, so its rows cannot be identified: ` +
          "add a primary key, or ALTER TABLE ... REPLICA IDENTITY USING INDEX on a unique index",
      });
    }
    for (const column of t.foreignTypes) {
      problems.push({
        code: "UNSUPPORTED_TYPE",
        message: `column ${t.table}.${column.split(" ")[0]} has type ${column.slice(column.indexOf(" ") + 1)}, defined outside pg_catalog; only built-in types are replicated`,
      });
    }
  }
  return problems;
}
