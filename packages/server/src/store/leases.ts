// Leases: which server owns a replication. A lease is taken when free or
// expired (or already this owner's), renewed only by its owner, and released
// only by its owner; a dead server's lease lapses after `seconds`, and then
// another server may take the replication over.
import type pg from "pg";

export class LeaseStore {
  constructor(private readonly db: pg.Pool) {}

  /** Takes or extends the lease for `seconds`; false while another owner holds it unexpired. */
  async acquire(replicationId: string, owner: string, seconds: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO leases (replication_id, owner, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (replication_id) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
        WHERE leases.expires_at < now() OR leases.owner = EXCLUDED.owner`,
      [replicationId, owner, seconds],
    );
    return rowCount === 1;
  }

  /** Extends the lease by `seconds` from now; false when `owner` does not hold it (lost, or taken by another). */
  async renew(replicationId: string, owner: string, seconds: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      "UPDATE leases SET expires_at = now() + make_interval(secs => $3) WHERE replication_id = $1 AND owner = $2",
      [replicationId, owner, seconds],
    );
    return rowCount === 1;
  }

  /** Whether `owner` holds the lease now (unexpired); reads only, for a decision only the holder may make. */
  async holds(replicationId: string, owner: string): Promise<boolean> {
    const { rowCount } = await this.db.query("SELECT 1 FROM leases WHERE replication_id = $1 AND owner = $2 AND expires_at > now()", [replicationId, owner]);
    return rowCount === 1;
  }

  /** Lets the lease go; a lease another owner holds stays. */
  async release(replicationId: string, owner: string): Promise<void> {
    await this.db.query("DELETE FROM leases WHERE replication_id = $1 AND owner = $2", [replicationId, owner]);
  }
}
