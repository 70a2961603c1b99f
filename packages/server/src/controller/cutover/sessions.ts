// Sessions to both sides of a cutover, opened before its fence and lent to
// every part up to the switch (the engine's TenantDatabase.session): the
// window in which the tenant's writes wait then holds no connection set-up
// (a TLS and SCRAM exchange each, tens of ms on a busy host).
import { connect, type TenantDatabase } from "@heliosdb/replication-engine";

export interface LentSessions {
  source: TenantDatabase;
  target: TenantDatabase;
  end(): Promise<void>;
}

export async function lendSessions(source: TenantDatabase, target: TenantDatabase): Promise<LentSessions> {
  const open = async (db: TenantDatabase) => {
    const session = await connect({ application_name: "heliosdb_cutover", ...db.connection });
    // A session the server ends meanwhile fails the part that uses it; unheard, its error would end the process.
    session.on("error", () => undefined);
    return session;
  };
  const [s, t] = await Promise.all([open(source), open(target)]);
  return {
    source: { ...source, session: s },
    target: { ...target, session: t },
    end: async () => void (await Promise.all([s.end().catch(() => undefined), t.end().catch(() => undefined)])),
  };
}

/**
 * Lent sessions kept for a job across its steps (a failover's fence, promotion
 * and switch are three steps, each recorded before the next): opened at the
 * first ask, before the fence, and lent again to each later ask of the same
 * job, so that no step inside the window sets one up. A job ends them when it
 * is done with them; sessions a job no longer asks for (it ended elsewhere,
 * this server lost its lease) are ended `idleMs` after the last ask — long
 * enough for a verification on a snapshot the target's session holds. A session the
 * server ended meanwhile is not lent again: the next ask opens new ones.
 */
export class JobSessions {
  private readonly held = new Map<string, { lent: Promise<LentSessions>; broken: () => boolean; timer?: NodeJS.Timeout }>();

  constructor(private readonly idleMs = 10 * 60_000) {}

  /** The job's sessions; `databases` says where to open them when the job has none (or a broken pair). */
  async lend(jobId: string, databases: () => Promise<{ source: TenantDatabase; target: TenantDatabase }>): Promise<LentSessions> {
    let entry = this.held.get(jobId);
    if (entry?.broken()) {
      await this.release(jobId);
      entry = undefined;
    }
    if (!entry) {
      let broken = false;
      const lent = databases().then(async ({ source, target }) => {
        const opened = await lendSessions(source, target);
        for (const s of [opened.source.session!, opened.target.session!]) {
          s.on("error", () => void (broken = true));
          s.on("end", () => void (broken = true));
        }
        return opened;
      });
      const created = { lent, broken: () => broken };
      // A failed open is not kept: the next ask tries again.
      lent.catch(() => this.held.get(jobId) === created && this.held.delete(jobId));
      entry = created;
      this.held.set(jobId, entry);
    }
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.release(jobId), this.idleMs);
    entry.timer.unref();
    return entry.lent;
  }

  /** Ends the job's sessions (if any). */
  async release(jobId: string): Promise<void> {
    const entry = this.held.get(jobId);
    if (!entry) return;
    this.held.delete(jobId);
    clearTimeout(entry.timer);
    await (await entry.lent.catch(() => undefined))?.end();
  }
}
