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
