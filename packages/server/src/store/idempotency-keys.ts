// Idempotency keys, per principal: the request a key was first used with
// (its digest) and, once it succeeded, its response. A key is claimed before
// the work starts, so two requests racing with one key do the work once.
import type pg from "pg";

export interface IdempotencyKey {
  requestSha256: string;
  /** Absent while the first request is still in progress. */
  response: Buffer | null;
}

export class IdempotencyKeyStore {
  constructor(private readonly db: pg.Pool) {}

  /** Claims `key` for this request; false when the principal has used it already. */
  async claim(principal: string, key: string, method: string, requestSha256: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO idempotency_keys (key, principal, method, request_sha256) VALUES ($1, $2, $3, $4)
       ON CONFLICT (principal, key) DO NOTHING`,
      [key, principal, method, requestSha256],
    );
    return rowCount === 1;
  }

  async get(principal: string, key: string): Promise<IdempotencyKey | undefined> {
    const { rows } = await this.db.query<{ request_sha256: string; response: Buffer | null }>(
      "SELECT request_sha256, response FROM idempotency_keys WHERE principal = $1 AND key = $2",
      [principal, key],
    );
    return rows[0] ? { requestSha256: rows[0].request_sha256, response: rows[0].response } : undefined;
  }

  /** Keeps the first request's response, answered again to its repeats. */
  async complete(principal: string, key: string, response: Uint8Array): Promise<void> {
    await this.db.query("UPDATE idempotency_keys SET response = $3 WHERE principal = $1 AND key = $2", [principal, key, response]);
  }

  /** Frees the key: its request failed and did nothing. */
  async release(principal: string, key: string): Promise<void> {
    await this.db.query("DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2", [principal, key]);
  }
}
