// Grants of operator-owned connections to tenants: which databases and
// schemas ("*": any) a tenant may read or write through a connection.
import type pg from "pg";

export interface ConnectionGrantRow {
  connectionId: string;
  tenantId: string;
  databases: string[];
  schemas: string[];
  createdAt: Date;
}

function row(r: Record<string, unknown>): ConnectionGrantRow {
  return {
    connectionId: r.connection_id as string,
    tenantId: r.tenant_id as string,
    databases: r.databases as string[],
    schemas: r.schemas as string[],
    createdAt: r.created_at as Date,
  };
}

const COLUMNS = "connection_id, tenant_id, databases, schemas, created_at";

export class ConnectionGrantStore {
  constructor(private readonly db: pg.Pool) {}

  /** Grants, or replaces the tenant's grant on the connection. */
  async put(g: Omit<ConnectionGrantRow, "createdAt">): Promise<ConnectionGrantRow> {
    const { rows } = await this.db.query(
      `INSERT INTO connection_grants (connection_id, tenant_id, databases, schemas) VALUES ($1, $2, $3, $4)
       ON CONFLICT (connection_id, tenant_id) DO UPDATE SET databases = EXCLUDED.databases, schemas = EXCLUDED.schemas, created_at = now()
       RETURNING ${COLUMNS}`,
      [g.connectionId, g.tenantId, g.databases, g.schemas],
    );
    return row(rows[0]);
  }

  /** Grants unless the tenant has a grant on the connection already (the demo, at every start). */
  async putIfMissing(g: Omit<ConnectionGrantRow, "createdAt">): Promise<void> {
    await this.db.query(
      `INSERT INTO connection_grants (connection_id, tenant_id, databases, schemas) VALUES ($1, $2, $3, $4)
       ON CONFLICT (connection_id, tenant_id) DO NOTHING`,
      [g.connectionId, g.tenantId, g.databases, g.schemas],
    );
  }

  async get(connectionId: string, tenantId: string): Promise<ConnectionGrantRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM connection_grants WHERE connection_id = $1 AND tenant_id = $2`, [connectionId, tenantId]);
    return rows[0] ? row(rows[0]) : undefined;
  }

  /** The grants of these connections, by connection id, oldest first. */
  async of(connectionIds: string[]): Promise<Map<string, ConnectionGrantRow[]>> {
    const out = new Map<string, ConnectionGrantRow[]>(connectionIds.map((id) => [id, []]));
    if (connectionIds.length === 0) return out;
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS} FROM connection_grants WHERE connection_id = ANY($1::uuid[]) ORDER BY created_at, tenant_id`,
      [connectionIds],
    );
    for (const r of rows.map(row)) out.get(r.connectionId)?.push(r);
    return out;
  }

  async revoke(connectionId: string, tenantId: string): Promise<boolean> {
    const { rowCount } = await this.db.query("DELETE FROM connection_grants WHERE connection_id = $1 AND tenant_id = $2", [connectionId, tenantId]);
    return rowCount === 1;
  }

  /** Whether a replication of the tenant (not stopped, not deleted) reads or writes through the connection. */
  async inUse(connectionId: string, tenantId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `SELECT 1 FROM replications WHERE deleted_at IS NULL AND desired <> 'stopped' AND tenant_id = $2
          AND (source->>'connectionId' = $1 OR target->>'connectionId' = $1) LIMIT 1`,
      [connectionId, tenantId],
    );
    return (rowCount ?? 0) > 0;
  }
}
