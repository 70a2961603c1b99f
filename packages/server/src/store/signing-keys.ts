// The keys that sign and verify the server's own JWTs, shared by every
// server of the control plane. Private material is sealed with the master key
// and wiped when a key retires.
import type pg from "pg";
import type { SecretBox } from "./secrets";

export type SigningAlgorithm = "ES256" | "RS256" | "HS256";

export interface SigningKeyRow {
  kid: string;
  alg: SigningAlgorithm;
  /** The private JWK (JSON), or an HS256 secret (hex). */
  privateKey: string;
  /** An asymmetric key's public JWK. */
  publicJwk?: Record<string, unknown>;
  /** "generated": signs while current; "data-dir": a server's jwt.key, verifies only. */
  origin: "generated" | "data-dir";
  createdAt: Date;
  supersededAt?: Date;
  retiresAt?: Date;
}

export interface NewSigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: string;
  publicJwk?: Record<string, unknown>;
}

// An arbitrary constant: serializes rotations of servers starting together.
const ROTATION_LOCK = 4_621_022;

export class SigningKeyStore {
  constructor(
    private readonly db: pg.Pool,
    private readonly box: SecretBox,
  ) {}

  /** Keys that verify now (not retired, not past their retirement), newest first. */
  async active(): Promise<SigningKeyRow[]> {
    const { rows } = await this.db.query(
      `SELECT kid, alg, private_sealed, public_jwk, origin, created_at, superseded_at, retires_at FROM signing_keys
        WHERE retired_at IS NULL AND private_sealed IS NOT NULL AND (retires_at IS NULL OR retires_at > now())
        ORDER BY created_at DESC, kid`,
    );
    return rows.map((r) => ({
      kid: r.kid,
      alg: r.alg,
      privateKey: this.box.open(r.private_sealed),
      ...(r.public_jwk ? { publicJwk: r.public_jwk } : {}),
      origin: r.origin,
      createdAt: r.created_at,
      ...(r.superseded_at ? { supersededAt: r.superseded_at } : {}),
      ...(r.retires_at ? { retiresAt: r.retires_at } : {}),
    }));
  }

  /** Adds a data directory's HS256 key, unless it is known (a retired one stays retired). */
  async importDataDirKey(kid: string, secretHex: string): Promise<void> {
    await this.db.query(
      `INSERT INTO signing_keys (kid, alg, private_sealed, origin) VALUES ($1, 'HS256', $2, 'data-dir') ON CONFLICT (kid) DO NOTHING`,
      [kid, this.box.seal(secretHex)],
    );
  }

  /**
   * Makes `make()` the signing key when there is no current one, or when the
   * current one is older than `maxAgeMs` (always, with `force`); the one it
   * replaces verifies `overlapMs` longer. One server at a time decides, so
   * servers starting together make one key. Resolves the new key's kid, or
   * undefined when the current one stays.
   */
  async rotate(make: () => Promise<NewSigningKey>, options: { maxAgeMs: number; overlapMs: number; force?: boolean }): Promise<string | undefined> {
    const client = await this.db.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [ROTATION_LOCK]);
      const { rows } = await client.query<{ kid: string; age_ms: number }>(
        `SELECT kid, extract(epoch FROM now() - created_at) * 1000 AS age_ms FROM signing_keys
          WHERE origin = 'generated' AND superseded_at IS NULL AND retired_at IS NULL`,
      );
      if (!options.force && rows.some((r) => Number(r.age_ms) < options.maxAgeMs)) {
        await client.query("ROLLBACK");
        return undefined;
      }
      const key = await make();
      await client.query(
        `UPDATE signing_keys SET superseded_at = now(), retires_at = now() + make_interval(secs => $1)
          WHERE origin = 'generated' AND superseded_at IS NULL AND retired_at IS NULL`,
        [options.overlapMs / 1000],
      );
      await client.query(`INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, origin) VALUES ($1, $2, $3, $4, 'generated')`, [
        key.kid,
        key.alg,
        this.box.seal(key.privateKey),
        key.publicJwk ? JSON.stringify(key.publicJwk) : null,
      ]);
      await client.query("COMMIT");
      return key.kid;
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /** Retires one key at once: tokens it signed are refused from now on. Resolves whether it was active. */
  async retire(kid: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE signing_keys SET retired_at = now(), private_sealed = NULL, superseded_at = coalesce(superseded_at, now())
        WHERE kid = $1 AND retired_at IS NULL`,
      [kid],
    );
    return rowCount === 1;
  }

  /** Retires the keys whose overlap has passed (their private material is wiped). */
  async retireExpired(): Promise<number> {
    const { rowCount } = await this.db.query(
      `UPDATE signing_keys SET retired_at = now(), private_sealed = NULL WHERE retired_at IS NULL AND retires_at <= now()`,
    );
    return rowCount ?? 0;
  }
}
