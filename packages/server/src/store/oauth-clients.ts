// OAuth clients and the users who sign in on the login page (migration 6).
// Secrets and passwords arrive here already hashed (controller/password-hash.ts).
import { randomUUID } from "node:crypto";
import type pg from "pg";

export interface OAuthClientRow {
  id: string;
  name: string;
  /** scrypt hash of the client secret; undefined for a public client. */
  secretHash?: string;
  redirectUris: string[];
  grantTypes: string[];
  tenantId: string;
  roles: string[];
  permissions: string[];
  createdBy: string;
  createdAt: Date;
}

export interface UserRow {
  id: string;
  username: string;
  passwordHash: string;
  tenantId: string;
  roles: string[];
  createdBy: string;
  createdAt: Date;
  passwordSetAt: Date;
}

export type NewOAuthClient = Omit<OAuthClientRow, "id" | "createdAt">;
export type NewUser = Omit<UserRow, "id" | "createdAt" | "passwordSetAt">;

const CLIENT_COLUMNS = "id, name, secret_hash, redirect_uris, grant_types, tenant_id, roles, permissions, created_by, created_at";
const USER_COLUMNS = "id, username, password_hash, tenant_id, roles, created_by, created_at, password_set_at";

function clientRow(r: Record<string, unknown>): OAuthClientRow {
  return {
    id: r.id as string,
    name: r.name as string,
    ...(r.secret_hash ? { secretHash: r.secret_hash as string } : {}),
    redirectUris: r.redirect_uris as string[],
    grantTypes: r.grant_types as string[],
    tenantId: r.tenant_id as string,
    roles: r.roles as string[],
    permissions: r.permissions as string[],
    createdBy: r.created_by as string,
    createdAt: r.created_at as Date,
  };
}

function userRow(r: Record<string, unknown>): UserRow {
  return {
    id: r.id as string,
    username: r.username as string,
    passwordHash: r.password_hash as string,
    tenantId: r.tenant_id as string,
    roles: r.roles as string[],
    createdBy: r.created_by as string,
    createdAt: r.created_at as Date,
    passwordSetAt: r.password_set_at as Date,
  };
}

export class OAuthClientStore {
  constructor(private readonly db: pg.Pool) {}

  async create(client: NewOAuthClient): Promise<OAuthClientRow> {
    const { rows } = await this.db.query(
      `INSERT INTO oauth_clients (id, name, secret_hash, redirect_uris, grant_types, tenant_id, roles, permissions, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${CLIENT_COLUMNS}`,
      [randomUUID(), client.name, client.secretHash ?? null, client.redirectUris, client.grantTypes, client.tenantId, client.roles, client.permissions, client.createdBy],
    );
    return clientRow(rows[0]);
  }

  async get(id: string): Promise<OAuthClientRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${CLIENT_COLUMNS} FROM oauth_clients WHERE id = $1`, [id]);
    return rows[0] ? clientRow(rows[0]) : undefined;
  }

  async list(tenantId: string | undefined, offset: number, limit: number): Promise<[OAuthClientRow[], number]> {
    const { rows } = await this.db.query(
      `SELECT ${CLIENT_COLUMNS}, count(*) OVER () AS total FROM oauth_clients WHERE ($1::text IS NULL OR tenant_id = $1)
        ORDER BY created_at DESC, id OFFSET $2 LIMIT $3`,
      [tenantId ?? null, offset, limit],
    );
    if (rows[0] || offset === 0) return [rows.map(clientRow), rows[0] ? Number(rows[0].total) : 0];
    const count = await this.db.query(`SELECT count(*)::int AS n FROM oauth_clients WHERE ($1::text IS NULL OR tenant_id = $1)`, [tenantId ?? null]);
    return [[], count.rows[0].n];
  }

  /** Deletes a client, and with it (ON DELETE CASCADE) its grants, codes and refresh tokens. */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`DELETE FROM oauth_clients WHERE id = $1`, [id]);
    return (rowCount ?? 0) > 0;
  }
}

export class UserStore {
  constructor(private readonly db: pg.Pool) {}

  /** The new user, or undefined when the username is taken. */
  async create(user: NewUser): Promise<UserRow | undefined> {
    const { rows } = await this.db.query(
      `INSERT INTO oauth_users (id, username, password_hash, tenant_id, roles, created_by)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING RETURNING ${USER_COLUMNS}`,
      [randomUUID(), user.username, user.passwordHash, user.tenantId, user.roles, user.createdBy],
    );
    return rows[0] ? userRow(rows[0]) : undefined;
  }

  async get(id: string): Promise<UserRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${USER_COLUMNS} FROM oauth_users WHERE id = $1`, [id]);
    return rows[0] ? userRow(rows[0]) : undefined;
  }

  async byUsername(username: string): Promise<UserRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${USER_COLUMNS} FROM oauth_users WHERE username = $1`, [username]);
    return rows[0] ? userRow(rows[0]) : undefined;
  }

  async list(tenantId: string | undefined, offset: number, limit: number): Promise<[UserRow[], number]> {
    const { rows } = await this.db.query(
      `SELECT ${USER_COLUMNS}, count(*) OVER () AS total FROM oauth_users WHERE ($1::text IS NULL OR tenant_id = $1)
        ORDER BY created_at DESC, id OFFSET $2 LIMIT $3`,
      [tenantId ?? null, offset, limit],
    );
    if (rows[0] || offset === 0) return [rows.map(userRow), rows[0] ? Number(rows[0].total) : 0];
    const count = await this.db.query(`SELECT count(*)::int AS n FROM oauth_users WHERE ($1::text IS NULL OR tenant_id = $1)`, [tenantId ?? null]);
    return [[], count.rows[0].n];
  }

  /** Deletes a user, and with it (ON DELETE CASCADE) the grants issued to the user. */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`DELETE FROM oauth_users WHERE id = $1`, [id]);
    return (rowCount ?? 0) > 0;
  }

  /** Sets a password and revokes every grant the user made with the old one (a changed password ends its sessions). */
  async setPassword(id: string, passwordHash: string): Promise<UserRow | undefined> {
    const { rows } = await this.db.query(
      `WITH revoked AS (UPDATE oauth_grants SET revoked_at = now(), revoked_reason = 'password changed' WHERE user_id = $1 AND revoked_at IS NULL)
       UPDATE oauth_users SET password_hash = $2, password_set_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`,
      [id, passwordHash],
    );
    return rows[0] ? userRow(rows[0]) : undefined;
  }
}
