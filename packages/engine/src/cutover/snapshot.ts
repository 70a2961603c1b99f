// A moment of a database held for a later read: a session in a REPEATABLE
// READ transaction that exported its snapshot (pg_export_snapshot). Another
// session that imports it (SET TRANSACTION SNAPSHOT) sees the database
// exactly as it was then, whatever committed since — for as long as the
// holder's transaction stays open. A cutover takes one of the new primary
// right before its routing switch (one round trip in the window in which
// writes wait) and verifies against it after the switch, while the tenant
// already writes there: the comparison is exact, and it costs the clients no
// downtime however large the tenant.
import { open, type TenantDatabase } from "./tables";

export interface HeldSnapshot {
  /** The exported snapshot's id, for VerifyOptions.targetSnapshot / sourceSnapshot. */
  readonly id: string;
  /** Ends the holder's transaction and session; the id is void from then on. Idempotent. */
  release(): Promise<void>;
}

export async function holdSnapshot(database: TenantDatabase): Promise<HeldSnapshot> {
  const client = await open(database, "heliosdb_snapshot");
  // An idle session in a transaction must not be ended by the server's idle timeout while the verification runs.
  client.on("error", () => undefined);
  try {
    const results = (await client.query(
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL idle_in_transaction_session_timeout = 0; SELECT pg_export_snapshot() AS id",
    )) as unknown as { rows: { id?: string }[] }[];
    const id = results[results.length - 1]!.rows[0]!.id!;
    let released: Promise<void> | undefined;
    return {
      id,
      release() {
        released ??= client
          .query("COMMIT")
          .catch(() => undefined)
          .then(() => client.end())
          .catch(() => undefined);
        return released;
      },
    };
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
}
