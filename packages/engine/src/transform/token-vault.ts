// The token vault: the only place a tokenized value can be turned back into
// the original. Tokens on the target are deterministic (so joins and updates
// keep working), and the vault maps them back, for privileged callers only.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import pg from "pg";
import type { KeyProvider } from "./keys";

/** The permission a principal needs to turn a token back into its value. */
export const DETOKENIZE_PERMISSION = "pii:detokenize";

/** Who is asking; permissions come from the caller's authenticated identity. */
export interface Principal {
  permissions: string[];
}

/** Thrown when a principal without "pii:detokenize" asks for a value. */
export class PermissionDeniedError extends Error {
  readonly permission: string;
  constructor(permission: string, action: string) {
    super(`permission denied: ${action} requires the "${permission}" permission`);
    this.name = "PermissionDeniedError";
    this.permission = permission;
  }
}

export interface TokenVault {
  /** Records token → value pairs for a tenant. Idempotent: storing a pair again is a no-op. */
  store(tenantId: string, entries: ReadonlyMap<string, string>): Promise<void>;
  /**
   * The value behind `token`, or null when the vault has no such token for the
   * tenant. Throws PermissionDeniedError unless the principal has "pii:detokenize".
   */
  detokenize(tenantId: string, token: string, principal: Principal): Promise<string | null>;
}

/** Throws PermissionDeniedError unless `principal` may detokenize. */
export function assertMayDetokenize(principal: Principal): void {
  if (!principal?.permissions?.includes(DETOKENIZE_PERMISSION)) {
    throw new PermissionDeniedError(DETOKENIZE_PERMISSION, "detokenizing a value");
  }
}

const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;

// The tenant and token are bound into the ciphertext as associated data, so a
// ciphertext copied onto another row (or another tenant's row) fails to
// decrypt instead of silently revealing the wrong value.
function associatedData(tenantId: string, token: string): Buffer {
  return Buffer.from(`${tenantId}\u0000${token}`, "utf8");
}

/** AES-256-GCM: returns nonce ‖ ciphertext ‖ tag, with a fresh random nonce. */
export function sealValue(key: Buffer, tenantId: string, token: string, value: string): Buffer {
  const nonce = randomBytes(NONCE_LENGTH);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(associatedData(tenantId, token));
  const body = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** The reverse of sealValue; throws when the data was tampered with or moved. */
export function openValue(key: Buffer, tenantId: string, token: string, sealed: Buffer): string {
  if (sealed.length < NONCE_LENGTH + TAG_LENGTH) throw new Error("vault entry is too short to be a sealed value");
  const nonce = sealed.subarray(0, NONCE_LENGTH);
  const tag = sealed.subarray(sealed.length - TAG_LENGTH);
  const body = sealed.subarray(NONCE_LENGTH, sealed.length - TAG_LENGTH);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(associatedData(tenantId, token));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
}

const SCHEMA = "heliosdb_vault";
const TABLE = `${SCHEMA}.tokens`;

/** A vault in a PostgreSQL table, values sealed with the tenant's "vault" key. */
export class PgTokenVault implements TokenVault {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #keys: KeyProvider;
  #ready: Promise<void> | undefined;

  /** `db` is a pool (the caller ends it) or a connection string (close() ends the pool made from it). */
  constructor(db: pg.Pool | string, keys: KeyProvider) {
    this.#ownsPool = typeof db === "string";
    this.#pool = typeof db === "string" ? new pg.Pool({ connectionString: db, max: 4 }) : db;
    // An idle session the server ends emits 'error' on the pool; unheard, it would crash the process.
    if (this.#ownsPool) this.#pool.on("error", () => undefined);
    this.#keys = keys;
  }

  /** Creates the vault schema and table when missing; called lazily by store/detokenize. */
  ensureTable(): Promise<void> {
    if (!this.#ready) {
      this.#ready = this.#createTable();
      // A failed attempt (database briefly down) must not poison later calls.
      this.#ready.catch(() => (this.#ready = undefined));
    }
    return this.#ready;
  }

  async #createTable(): Promise<void> {
    // Checked first so a role that may use the table but not create schemas
    // (the least-privilege setup) never runs DDL it has no right to.
    const exists = await this.#pool.query<{ ok: boolean }>("SELECT to_regclass($1) IS NOT NULL AS ok", [TABLE]);
    if (exists.rows[0]?.ok) return;
    const client = await this.#pool.connect();
    try {
      // IF NOT EXISTS is not safe against concurrent creators (two may both
      // see "missing" and one fails on a catalog unique index), so creators
      // serialize on an advisory lock held for the transaction.
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext('heliosdb_vault.tokens'))");
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${TABLE} (
           tenant_id text NOT NULL,
           token text NOT NULL,
           value_ciphertext bytea NOT NULL,
           PRIMARY KEY (tenant_id, token)
         )`,
      );
      await client.query("COMMIT");
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async store(tenantId: string, entries: ReadonlyMap<string, string>): Promise<void> {
    if (entries.size === 0) return;
    await this.ensureTable();
    const key = await this.#keys.key(tenantId, "vault");
    const tokens: string[] = [];
    const sealed: Buffer[] = [];
    for (const [token, value] of entries) {
      tokens.push(token);
      sealed.push(sealValue(key, tenantId, token, value));
    }
    // One statement per batch whatever its size: arrays keep the parameter
    // count at three. DO NOTHING keeps the first ciphertext, so replaying a
    // batch after a crash is harmless (same token ⇒ same value).
    await this.#pool.query(
      `INSERT INTO ${TABLE} (tenant_id, token, value_ciphertext)
       SELECT $1, t.token, t.value_ciphertext FROM unnest($2::text[], $3::bytea[]) AS t(token, value_ciphertext)
       ON CONFLICT (tenant_id, token) DO NOTHING`,
      [tenantId, tokens, sealed],
    );
  }

  async detokenize(tenantId: string, token: string, principal: Principal): Promise<string | null> {
    // Checked before touching the database, so an unauthorized caller learns
    // nothing, not even whether the token exists.
    assertMayDetokenize(principal);
    await this.ensureTable();
    const { rows } = await this.#pool.query<{ value_ciphertext: Buffer }>(
      `SELECT value_ciphertext FROM ${TABLE} WHERE tenant_id = $1 AND token = $2`,
      [tenantId, token],
    );
    const row = rows[0];
    if (!row) return null;
    const key = await this.#keys.key(tenantId, "vault");
    return openValue(key, tenantId, token, row.value_ciphertext);
  }

  /** Ends the pool when this vault created it from a connection string. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }
}
