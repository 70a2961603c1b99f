// A mark in the source's WAL for a catch-up before a fence: a transactional
// logical-decoding message (prefix heliosdb_mark) in a transaction of its own.
// A replication's applied position passes it only once everything committed
// before it is applied, and the batcher applies its transaction at once (as a
// fence's), so `drainTo(mark)` ends as soon as the target has caught up with
// the moment of the mark. A cutover drains to a mark while the tenant still
// writes, then fences: the drain inside its window is left only the writes
// of the last moments.
import { parseLsn, type Lsn } from "../types";
import { open, type TenantDatabase } from "./tables";

/** The prefix of the logical-decoding message that marks a catch-up point in the WAL. */
export const MARK_MESSAGE_PREFIX = "heliosdb_mark";

/** Writes a mark on `source`; resolves with its position, for drainTo. */
export async function markPosition(source: TenantDatabase): Promise<Lsn> {
  const client = await open(source, "heliosdb_mark");
  try {
    const { rows } = await client.query<{ lsn: string }>("SELECT pg_logical_emit_message(true, $1, '')::text AS lsn", [MARK_MESSAGE_PREFIX]);
    return parseLsn(rows[0]!.lsn);
  } finally {
    await client.end().catch(() => undefined);
  }
}
