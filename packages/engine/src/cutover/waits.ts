// Who waits for whom in a database: the evidence a stuck drain or a slow
// step reports, so that "the target did not apply X in time" also says what
// held the applier (a session left in a transaction, a DDL queued for its
// lock…) instead of leaving that to a guess.
import type pg from "pg";

/** Each session of the current database that waits for a lock, with the sessions it waits for; empty when none (or not readable). */
export async function lockWaits(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client
    .query<{ wait: string }>(
      `SELECT format('pid %s (%s, %s) waits for %s', w.pid, coalesce(nullif(w.application_name, ''), w.backend_type), left(coalesce(w.query, ''), 80),
                     string_agg(format('pid %s (%s, %s, %s)', b.pid, coalesce(nullif(b.application_name, ''), b.backend_type), coalesce(b.state, '?'),
                                       left(coalesce(b.query, ''), 80)), '; ')) AS wait
         FROM pg_stat_activity w
         CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)
         JOIN pg_stat_activity b ON b.pid = blocker.pid
        WHERE w.datname = current_database() AND w.wait_event_type = 'Lock'
        GROUP BY w.pid, w.application_name, w.backend_type, w.query`,
    )
    .catch(() => ({ rows: [] as { wait: string }[] }));
  return rows.map((r) => r.wait);
}
