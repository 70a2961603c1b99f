// The verification of a cutover, made after the switch so that it adds
// nothing to the downtime — shared by failover (UpdateRouting) and, once it
// points here, migration (Cutover). The source is fenced, so it stays as the
// fence left it; the target's state right before the switch is held (an
// exported snapshot, the engine's holdSnapshot), so the comparison is exact
// while the tenant already writes on the target. What it finds is reported,
// never thrown: once the routing names the target, clients write there, and
// a rollback would move them off writes they made.
import { verify, type HeldSnapshot, type TenantDatabase } from "@heliosdb/replication-engine";
import type { CutoverContext } from "./state";

export type Verified = {
  ok: boolean;
  message: string;
  tables?: { table: string; source_rows: number; target_rows: number; checksum: string }[];
};

/** Said when the held snapshot died with the server that held it: the target has taken writes since. */
export const UNVERIFIED: Verified = {
  ok: false,
  message: "not verified: the server that switched the routing stopped before its verification, and the target has taken writes since",
};

export interface VerifyScope {
  /** Tables compared (a filtered table holds part of the data and is not). */
  tables: string[];
  /** Tables whose values a transform rewrites: compared by count only. */
  transformed?: string[];
}

/**
 * Counts and checksums of every compared table: the source (fenced) against
 * the target's held snapshot. Without `held` (an earlier server held it and
 * died) the verification is said not to have been made; a failure of the
 * verification itself is said, not thrown (unless the step is aborted).
 */
export async function verifyAtSwitch(ctx: CutoverContext, source: TenantDatabase, target: TenantDatabase, scope: VerifyScope, held: HeldSnapshot | undefined): Promise<Verified> {
  if (!held) return UNVERIFIED;
  if (scope.tables.length === 0) return { ok: true, message: "nothing verified: every table is filtered, none holds the tenant's data whole" };
  try {
    const v = await verify(source, target, scope.tables, { checksum: true, targetSnapshot: held.id, ...(scope.transformed?.length ? { transformed: scope.transformed } : {}) });
    const summary = v.tables.map((t) => `${t.table} ${t.targetRows}/${t.sourceRows} rows, ${t.checksum === "match" ? "checksums equal" : t.checksum}`).join("; ");
    return {
      ok: v.ok,
      message: v.ok
        ? `verified after the switch: the target as the switch found it equals the source at the fence: ${summary}`
        : `VERIFICATION FAILED after the switch (the switch stands: the tenant writes on the target): the target differs from the source at the fence in ${v.mismatched.join(", ")} (${summary})`,
      tables: v.tables.map((t) => ({ table: t.table, source_rows: t.sourceRows, target_rows: t.targetRows, checksum: t.checksum })),
    };
  } catch (e) {
    ctx.signal.throwIfAborted();
    return { ok: false, message: `not verified: the verification after the switch failed: ${(e as Error).message}` };
  }
}
