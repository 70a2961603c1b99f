// Registered database connections. The password is stored sealed and only
// ever leaves this module as a pg client configuration for the engine, whose
// every connection then goes through the destination policy's socket.
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
  /** The owning tenant; "" : the operator's (used by tenants through grants). */
  ownerTenantId: string;
  createdAt: Date;
}

/** A connection as it is registered (the store adds the rest). */
export type NewConnection = Omit<ConnectionRow, "hasPassword" | "createdAt" | "ownerTenantId"> & { ownerTenantId?: string };

const COLUMNS = `id, name, engine, host, port, "user", password_ciphertext IS NOT NULL AS has_password,
                 database, sslmode, region, owner_tenant_id, created_at`;

// Connections a tenant may see: its own, and the operator's granted to it.
const VISIBLE = `($1 = '' OR owner_tenant_id = $1 OR (owner_tenant_id = '' AND EXISTS (
                   SELECT 1 FROM connection_grants g WHERE g.connection_id = connections.id AND g.tenant_id = $1)))`;

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
    ownerTenantId: r.owner_tenant_id as string,
    createdAt: r.created_at as Date,
  };
}

export class ConnectionStore {
  /**
   * `stream`: the socket every client configuration this store hands out
   * connects through (the destination policy's, see controller/destinations.ts).
   */
  constructor(
    private readonly db: pg.Pool,
    private readonly secrets: SecretBox,
    private readonly stream?: pg.ClientConfig["stream"],
  ) {}

  async insert(c: NewConnection, password: string): Promise<ConnectionRow> {
    const { rows } = await this.db.query(
      `INSERT INTO connections (id, name, engine, host, port, "user", password_ciphertext, database, sslmode, region, owner_tenant_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${COLUMNS}`,
      [c.id, c.name, c.engine, c.host, c.port, c.user, password ? this.secrets.seal(password) : null, c.database, c.sslmode, c.region, c.ownerTenantId ?? ""],
    );
    return row(rows[0]);
  }

  async get(id: string): Promise<ConnectionRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM connections WHERE id = $1`, [id]);
    return rows[0] ? row(rows[0]) : undefined;
  }

  /** A page of the connections of `region` ("" : all) that tenant `visibleTo` may see ("" : every one). */
  async list(region: string, offset: number, limit: number, visibleTo = ""): Promise<[ConnectionRow[], number]> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, count(*) OVER () AS total FROM connections
        WHERE ($2 = '' OR region = $2) AND ${VISIBLE} ORDER BY created_at, id OFFSET $3 LIMIT $4`,
      [visibleTo, region, offset, limit],
    );
    const total = rows[0] ? Number(rows[0].total) : await this.count(region, visibleTo);
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
      ...(this.stream ? { stream: this.stream } : {}),
    };
  }

  private async count(region: string, visibleTo: string): Promise<number> {
    const { rows } = await this.db.query(`SELECT count(*)::int AS n FROM connections WHERE ($2 = '' OR region = $2) AND ${VISIBLE}`, [visibleTo, region]);
    return rows[0].n;
  }
}

/** pg's ssl option for a libpq sslmode: TLS from "require" on, certificates checked from "verify-ca". */
export function sslOptions(sslmode: string): pg.ClientConfig["ssl"] | undefined {
  if (sslmode === "disable" || sslmode === "allow" || sslmode === "prefer") return undefined;
  return { rejectUnauthorized: sslmode === "verify-ca" || sslmode === "verify-full" };
}
