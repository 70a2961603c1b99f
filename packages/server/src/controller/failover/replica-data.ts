// What a replication does to the tenant's data on its way to the replica,
// read from its configuration: whether the promoted replica would hold the
// tenant's data as the tenant wrote it. Transforms that rewrite values
// (AnonymizePII, CompressColumns) leave other data than the tenant's; filters
// (Filter transforms, row_filter) and a table_filter that names columns
// leave part of it. An Aggregate adds a roll-up beside the data and changes
// nothing of it.
import { AnonymizePIITransform_AnonymizationMethod as Method, type ReplicationConfig } from "@heliosdb/replication-proto";

const METHOD: Record<Method, string> = {
  [Method.HASH]: "hashed (a keyed HMAC, which no one can turn back into the value)",
  [Method.TOKENIZE]: "tokenized (the values are tokens; only the vault turns them back)",
  [Method.REDACT]: "redacted (a fixed mask)",
  [Method.GENERALIZE]: "generalized (coarser values)",
};

export interface ReplicaData {
  /** Why the replica's values are not the tenant's (one line per transform); empty when they are. */
  rewritten: string[];
  /** Why the replica holds only part of the tenant's rows or columns; empty when it holds all of them. */
  partial: string[];
  /** Tables whose values some transform rewrites ("*": a column named alone, in any table). */
  rewrittenTables: Set<string>;
  /** Tables whose rows a filter leaves out ("*": every table, for row_filter). */
  filteredTables: Set<string>;
  /** Notes of what else the replication does (roll-ups). */
  notes: string[];
}

export function replicaData(config: ReplicationConfig): ReplicaData {
  const out: ReplicaData = { rewritten: [], partial: [], rewrittenTables: new Set(), filteredTables: new Set(), notes: [] };
  const tablesOf = (columns: string[]) => columns.map((c) => (c.includes(".") ? c.slice(0, c.indexOf(".")) : "*"));
  for (const t of config.transforms) {
    const v = t.transformType;
    switch (v.case) {
      case "anonymizePii":
        out.rewritten.push(`AnonymizePII: ${v.value.columns.join(", ")} ${METHOD[v.value.method] ?? "anonymized"} on the replica`);
        for (const table of tablesOf(v.value.columns)) out.rewrittenTables.add(table);
        break;
      case "compressColumns":
        out.rewritten.push(`CompressColumns: ${v.value.columns.join(", ")} stored compressed on the replica`);
        for (const table of tablesOf(v.value.columns)) out.rewrittenTables.add(table);
        break;
      case "filter":
        out.partial.push(`Filter: rows of ${v.value.table} where ${v.value.expression} were never replicated`);
        out.filteredTables.add(v.value.table);
        break;
      case "aggregate":
        out.notes.push(`Aggregate: the roll-up ${v.value.targetTable || `${v.value.table}_rollup`} of ${v.value.table} stays on the new primary, kept current by its triggers`);
        break;
    }
  }
  if (config.rowFilter?.enabled) {
    out.partial.push(`row_filter: only rows where ${config.rowFilter.expression} were replicated`);
    out.filteredTables.add("*");
  }
  const columns = config.tableFilter.filter((p) => p.includes(".") && !p.endsWith(".*"));
  if (columns.length > 0) out.partial.push(`table_filter: only the columns ${columns.join(", ")} (and keys) of their tables were replicated`);
  return out;
}
