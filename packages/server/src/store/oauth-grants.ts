// OAuth grants (migration 6): one row per authorization code or
// client_credentials request, under which its access tokens and its chain of
// refresh tokens live. Codes and refresh tokens are stored as SHA-256 digests
// (they are 256 random bits: nothing to brute-force), and each is consumed by
// one UPDATE … WHERE used IS NULL, so two racing uses cannot both succeed.
import { createHash, randomUUID } from "node:crypto";
import type pg from "pg";

export interface GrantRow {
  id: string;
  clientId: string;
  userId?: string;
  scope: string;
  expiresAt: Date;
  revokedAt?: Date;
}

export interface CodeRow {
  grant: GrantRow;
  redirectUri: string;
  codeChallenge: string;
  expiresAt: Date;
}

/** What a code's or refresh token's use found. */
export type Consumed<T> = { ok: T } | { reused: GrantRow } | { unknown: true };

export const digest = (secret: string) => createHash("sha256").update(secret).digest();

const GRANT_COLUMNS = "g.id, g.client_id, g.user_id, g.scope, g.expires_at, g.revoked_at";

function grantRow(r: Record<string, unknown>): GrantRow {
  return {
    id: r.id as string,
    clientId: r.client_id as string,
    ...(r.user_id ? { userId: r.user_id as string } : {}),
    scope: r.scope as string,
    expiresAt: r.expires_at as Date,
    ...(r.revoked_at ? { revokedAt: r.revoked_at as Date } : {}),
  };
}

// Expired grants are deleted by the server that creates a grant, at most this often.
const PRUNE_EVERY_MS = 10 * 60_000;

export class OAuthGrantStore {
  private lastPrune = 0;

  constructor(private readonly db: pg.Pool) {}

  /** A new grant, living `seconds` (the longest its refresh tokens may be used). */
  async createGrant(clientId: string, userId: string | undefined, scope: string, seconds: number): Promise<GrantRow> {
    // Grants are made as fast as tokens are asked for: the expired ones go at the same pace, not in a job of their own.
    if (Date.now() - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      await this.prune().catch(() => undefined);
    }
    const { rows } = await this.db.query(
      `INSERT INTO oauth_grants AS g (id, client_id, user_id, scope, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
       RETURNING ${GRANT_COLUMNS}`,
      [randomUUID(), clientId, userId ?? null, scope, seconds],
    );
    return grantRow(rows[0]);
  }

  async grant(id: string): Promise<GrantRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${GRANT_COLUMNS} FROM oauth_grants g WHERE g.id = $1`, [id]);
    return rows[0] ? grantRow(rows[0]) : undefined;
  }

  /** Whether the tokens of a grant are refused: revoked, expired, or gone with its client or user. */
  async isRevoked(id: string): Promise<boolean> {
    const { rows } = await this.db.query(`SELECT revoked_at IS NOT NULL AS revoked FROM oauth_grants WHERE id = $1`, [id]);
    return !rows[0] || rows[0].revoked;
  }

  /** Revokes a grant and so every token issued under it; true when it was not revoked before. */
  async revoke(id: string, reason: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`UPDATE oauth_grants SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL`, [id, reason]);
    return (rowCount ?? 0) > 0;
  }

  async createCode(code: string, grantId: string, redirectUri: string, codeChallenge: string, seconds: number): Promise<void> {
    await this.db.query(
      `INSERT INTO oauth_codes (code_hash, grant_id, redirect_uri, code_challenge, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
      [digest(code), grantId, redirectUri, codeChallenge, seconds],
    );
  }

  /** Uses a code once: its row when this was its first use (expired or not: the caller decides), its grant when it was used before. */
  async consumeCode(code: string): Promise<Consumed<CodeRow>> {
    const { rows } = await this.db.query(
      `WITH used AS (UPDATE oauth_codes SET used_at = now() WHERE code_hash = $1 AND used_at IS NULL RETURNING grant_id, redirect_uri, code_challenge, expires_at)
       SELECT ${GRANT_COLUMNS}, u.redirect_uri, u.code_challenge, u.expires_at AS code_expires_at FROM used u JOIN oauth_grants g ON g.id = u.grant_id`,
      [digest(code)],
    );
    if (rows[0]) {
      const r = rows[0];
      return { ok: { grant: grantRow(r), redirectUri: r.redirect_uri, codeChallenge: r.code_challenge, expiresAt: r.code_expires_at } };
    }
    return this.reusedOrUnknown(`SELECT ${GRANT_COLUMNS} FROM oauth_codes c JOIN oauth_grants g ON g.id = c.grant_id WHERE c.code_hash = $1`, code);
  }

  async createRefreshToken(token: string, grantId: string): Promise<void> {
    await this.db.query(`INSERT INTO oauth_refresh_tokens (token_hash, grant_id) VALUES ($1, $2)`, [digest(token), grantId]);
  }

  /** Rotates a refresh token: its grant when this was its first use, the grant alone when it was rotated before. */
  async consumeRefreshToken(token: string): Promise<Consumed<GrantRow>> {
    const { rows } = await this.db.query(
      `WITH used AS (UPDATE oauth_refresh_tokens SET rotated_at = now() WHERE token_hash = $1 AND rotated_at IS NULL RETURNING grant_id)
       SELECT ${GRANT_COLUMNS} FROM used u JOIN oauth_grants g ON g.id = u.grant_id`,
      [digest(token)],
    );
    if (rows[0]) return { ok: grantRow(rows[0]) };
    return this.reusedOrUnknown(`SELECT ${GRANT_COLUMNS} FROM oauth_refresh_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.token_hash = $1`, token);
  }

  /** The grant of a refresh token, rotated or not (for revocation). */
  async grantOfRefreshToken(token: string): Promise<GrantRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${GRANT_COLUMNS} FROM oauth_refresh_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.token_hash = $1`, [digest(token)]);
    return rows[0] ? grantRow(rows[0]) : undefined;
  }

  /** Forgets grants that expired a day ago or more (their codes and refresh tokens go with them). */
  async prune(): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM oauth_grants WHERE expires_at < now() - interval '1 day'`);
    return rowCount ?? 0;
  }

  private async reusedOrUnknown<T>(sql: string, secret: string): Promise<Consumed<T>> {
    const { rows } = await this.db.query(sql, [digest(secret)]);
    return rows[0] ? { reused: grantRow(rows[0]) } : { unknown: true };
  }
}
