// A control request that changed one job (a replication, a failover, a
// migration) tells the other servers which one: a NOTIFY on JOBS_CHANNEL,
// heard on each server's LISTEN session (the replication cache's), after the
// change committed. The node that took the request reconciles the job itself;
// the others reconcile it when they hear of it (the job's owner at once,
// rather than at its next pass). A signal lost while a session was down costs
// nothing but time: the periodic pass finds every change.
import type pg from "pg";

export const JOBS_CHANNEL = "heliosdb_jobs";

/** `replication`: a row of replications; `job`: a row of jobs (failovers, migrations). */
export type SignalledKind = "replication" | "job";

export interface JobSignal {
  kind: SignalledKind;
  id: string;
  /** The node that sent it (it has reconciled the job already). */
  from: string;
}

export class JobSignals {
  constructor(private readonly db: pg.Pool) {}

  async send(signal: JobSignal): Promise<void> {
    await this.db.query("SELECT pg_notify($1, $2)", [JOBS_CHANNEL, JSON.stringify(signal)]);
  }
}

/** A notification's payload as a signal; undefined when it is none (a foreign NOTIFY on the channel). */
export function parseSignal(payload: string): JobSignal | undefined {
  try {
    const s = JSON.parse(payload) as Partial<JobSignal>;
    if ((s.kind === "replication" || s.kind === "job") && typeof s.id === "string" && typeof s.from === "string") return s as JobSignal;
  } catch {
    // not ours
  }
  return undefined;
}
