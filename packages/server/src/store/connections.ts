// Registered database connections. The password is stored sealed and only
// ever leaves this module as a pg client configuration for the engine.
import type pg from "pg";
import type { SecretBox } from "./secrets";

export interface ConnectionRow {
  id: string;
  name: string;
  engine: string;
  host: string;
  port: number;
  user: string;
  hasPassword: boolean;
  database: string;
  sslmode: string;
  region: string;
  createdAt: Date;
}

const COLUMNS = `id, name, engine, host, port, "user", password_ciphertext IS NOT NULL AS has_password,
                 database, sslmode, region, created_at`;

function row(r: Record<string, unknown>): ConnectionRow {
  return {
    id: r.id as string,
    name: r.name as string,
    engine: r.engine as string,
    host: r.host as string,
    port: r.port as number,
    user: r.user as string,
    hasPassword: r.has_password as boolean,
    database: r.database as string,
    sslmode: r.sslmode as string,
    region: r.region as string,
    createdAt: r.created_at as Date,
  };
}

export class ConnectionStore {
  constructor(
    private readonly db: pg.Pool,
    private readonly secrets: SecretBox,
  ) {}

  async insert(c: Omit<ConnectionRow, "hasPassword" | "createdAt">, password: string): Promise<ConnectionRow> {
    const { rows } = await this.db.query(
      `INSERT INTO connections (id, name, engine, host, port, "user", password_ciphertext, database, sslmode, region)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
      [c.id, c.name, c.engine, c.host, c.port, c.user, password ? this.secrets.seal(password) : null, c.database, c.sslmode, c.region],
    );
    return row(rows[0]);
  }

  async get(id: string): Promise<ConnectionRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM connections WHERE id = $1`, [id]);
    return rows[0] ? row(rows[0]) : undefined;
  }

  async list(region: string, offset: number, limit: number): Promise<[ConnectionRow[], number]> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, count(*) OVER () AS total FROM connections
        WHERE ($1 = '' OR region = $1) ORDER BY created_at, id OFFSET $2 LIMIT $3`,
      [region, offset, limit],
    );
    const total = rows[0] ? Number(rows[0].total) : await this.count(region);
    return [rows.map(row), total];
  }

  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query("DELETE FROM connections WHERE id = $1", [id]);
    return rowCount === 1;
  }

  /** A pg client configuration for `database` on this connection, password included. */
  async clientConfig(id: string, database: string): Promise<pg.ClientConfig | undefined> {
    const { rows } = await this.db.query<{ host: string; port: number; user: string; password_ciphertext: Buffer | null; database: string; sslmode: string }>(
      `SELECT host, port, "user", password_ciphertext, database, sslmode FROM connections WHERE id = $1`,
      [id],
    );
    const c = rows[0];
    if (!c) return undefined;
    const ssl = sslOptions(c.sslmode);
    return {
      host: c.host,
      port: c.port,
      user: c.user,
      ...(c.password_ciphertext ? { password: this.secrets.open(c.password_ciphertext) } : {}),
      database: database || c.database || "postgres",
      ...(ssl ? { ssl } : {}),
    };
  }

  private async count(region: string): Promise<number> {
    const { rows } = await this.db.query("SELECT count(*)::int AS n FROM connections WHERE ($1 = '' OR region = $1)", [region]);
    return rows[0].n;
  }
}

/** pg's ssl option for a libpq sslmode: TLS from "require" on, certificates checked from "verify-ca". */
export function sslOptions(sslmode: string): pg.ClientConfig["ssl"] | undefined {
  if (sslmode === "disable" || sslmode === "allow" || sslmode === "prefer") return undefined;
  return { rejectUnauthorized: sslmode === "verify-ca" || sslmode === "verify-full" };
}
