// Test support: a server process that stops a failover (or a migration) at
// a named point inside its steps (FailoverOptions.pause, MigrationOptions.pause)
// records that it is there, in the control plane (test_failover_pauses, the
// job's id in failover_id), and waits — until a test, having seen the
// record, kills the process. For the fault suite's kill -9 in each failover
// step and migration phase. Not for production use.
import type pg from "pg";
import type { PausePoint } from "../controller/failover/deps";
import type { MigrationPausePoint } from "../controller/migration/deps";

export async function installFailoverPauses(db: pg.Pool): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS test_failover_pauses (
    failover_id uuid NOT NULL, point text NOT NULL, node text NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
}

/** The pause hook: at `point`, records the failover and waits until the step is aborted (or the process killed). */
export function pauseAt<P extends string = PausePoint>(db: pg.Pool, point: P, node: () => string) {
  return async (at: P, failoverId: string, signal: AbortSignal): Promise<void> => {
    if (at !== point) return;
    await db.query("INSERT INTO test_failover_pauses (failover_id, point, node) VALUES ($1, $2, $3)", [failoverId, point, node()]);
    await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
  };
}

/** Whether a server has recorded that the failover waits at `point`. */
export async function pausedAt(db: pg.Pool, failoverId: string, point: PausePoint | MigrationPausePoint): Promise<boolean> {
  const { rowCount } = await db.query("SELECT 1 FROM test_failover_pauses WHERE failover_id = $1 AND point = $2", [failoverId, point]);
  return (rowCount ?? 0) > 0;
}
