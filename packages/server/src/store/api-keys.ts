// API keys (spec §5.2). A key is 256 random bits, so a keyed hash is all it
// needs at rest (no slow KDF: nothing to brute-force): HMAC-SHA256 under a
// key derived from the master key, so that the table alone cannot even be
// checked against a guess. The key itself leaves the server once, in the
// create (or rotate) response.
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import type pg from "pg";

/** What every key starts with, so that scanners and people recognize one. */
export const API_KEY_PREFIX = "hdb_";
/** A key's form: the prefix and 43 base64url characters (32 bytes). */
export const API_KEY_FORM = /^hdb_[A-Za-z0-9_-]{43}$/;
/** How many characters of a key its `prefix` keeps (the "hdb_" and 8 more: 48 bits). */
const SHOWN = API_KEY_PREFIX.length + 8;

export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  tenantId: string;
  roles: string[];
  permissions: string[];
  tier: string;
  createdBy: string;
  createdAt: Date;
  expiresAt?: Date;
  lastUsedAt?: Date;
  revokedAt?: Date;
  replacedBy?: string;
  rotatedFrom?: string;
}

export type NewApiKey = Pick<ApiKeyRow, "name" | "tenantId" | "roles" | "permissions" | "tier" | "createdBy"> & { expiresAt?: Date };

const COLUMNS = `id, name, prefix, tenant_id, roles, permissions, tier, created_by, created_at, expires_at, last_used_at, revoked_at, replaced_by, rotated_from`;

function row(r: Record<string, unknown>): ApiKeyRow {
  const optional = (key: string, value: unknown) => (value ? { [key]: value } : {});
  return {
    id: r.id as string,
    name: r.name as string,
    prefix: r.prefix as string,
    tenantId: r.tenant_id as string,
    roles: r.roles as string[],
    permissions: r.permissions as string[],
    tier: r.tier as string,
    createdBy: r.created_by as string,
    createdAt: r.created_at as Date,
    ...optional("expiresAt", r.expires_at),
    ...optional("lastUsedAt", r.last_used_at),
    ...optional("revokedAt", r.revoked_at),
    ...optional("replacedBy", r.replaced_by),
    ...optional("rotatedFrom", r.rotated_from),
  };
}

/** The key under which API keys are hashed, derived from the master key. */
export function apiKeyHashKey(master: Buffer): Buffer {
  return createHmac("sha256", master).update("heliosdb api key hash v1").digest();
}

export class ApiKeyStore {
  constructor(
    private readonly db: pg.Pool,
    private readonly hashKey: Buffer,
  ) {}

  /** The stored form of a key. */
  hash(secret: string): Buffer {
    return createHmac("sha256", this.hashKey).update(secret).digest();
  }

  /** Stores a new key; resolves its row and the key itself (to be shown once). */
  async create(key: NewApiKey, rotatedFrom?: string, client: pg.Pool | pg.PoolClient = this.db): Promise<{ row: ApiKeyRow; secret: string }> {
    const secret = API_KEY_PREFIX + randomBytes(32).toString("base64url");
    const { rows } = await client.query(
      `INSERT INTO api_keys (id, name, prefix, key_hash, tenant_id, roles, permissions, tier, created_by, expires_at, rotated_from)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${COLUMNS}`,
      [randomUUID(), key.name, secret.slice(0, SHOWN), this.hash(secret), key.tenantId, key.roles, key.permissions, key.tier, key.createdBy, key.expiresAt ?? null, rotatedFrom ?? null],
    );
    return { row: row(rows[0]), secret };
  }

  async get(id: string): Promise<ApiKeyRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
    return rows[0] ? row(rows[0]) : undefined;
  }

  /** The key whose hash this is, revoked and expired ones included (the caller decides). */
  async findByHash(hash: Buffer): Promise<ApiKeyRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1`, [hash]);
    return rows[0] ? row(rows[0]) : undefined;
  }

  /** A page of keys, newest first: of one tenant when `tenantId` is set, without revoked ones unless asked. */
  async list(tenantId: string | undefined, includeRevoked: boolean, offset: number, limit: number): Promise<[ApiKeyRow[], number]> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, count(*) OVER () AS total FROM api_keys
        WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2 OR revoked_at IS NULL)
        ORDER BY created_at DESC, id OFFSET $3 LIMIT $4`,
      [tenantId ?? null, includeRevoked, offset, limit],
    );
    if (rows[0] || offset === 0) return [rows.map(row), rows[0] ? Number(rows[0].total) : 0];
    const count = await this.db.query(`SELECT count(*)::int AS n FROM api_keys WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2 OR revoked_at IS NULL)`, [
      tenantId ?? null,
      includeRevoked,
    ]);
    return [[], count.rows[0].n];
  }

  /** Revokes a key at once; resolves the row (unchanged when it was already revoked). */
  async revoke(id: string): Promise<ApiKeyRow | undefined> {
    const { rows } = await this.db.query(`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
    return rows[0] ? row(rows[0]) : undefined;
  }

  /**
   * A new key with the same name, tenant, roles, permissions, tier and
   * expiry, in one transaction with the old key's new expiry: the earlier of
   * its own and `overlapSeconds` from now. Resolves undefined when the old key
   * was revoked or rotated meanwhile.
   */
  async rotate(id: string, overlapSeconds: number, createdBy: string): Promise<{ row: ApiKeyRow; secret: string; previous: ApiKeyRow } | undefined> {
    const client = await this.db.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1 AND revoked_at IS NULL AND replaced_by IS NULL FOR UPDATE`, [id]);
      if (!rows[0]) {
        await client.query("ROLLBACK");
        return undefined;
      }
      const old = row(rows[0]);
      const created = await this.create({ ...old, createdBy }, old.id, client);
      const updated = await client.query(
        `UPDATE api_keys SET replaced_by = $2, expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $3))
          WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, created.row.id, overlapSeconds],
      );
      await client.query("COMMIT");
      return { ...created, previous: row(updated.rows[0]) };
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /** Records a use; at most one write a minute per key, whichever server answers. */
  async touch(id: string): Promise<void> {
    await this.db.query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, [id]);
  }
}
