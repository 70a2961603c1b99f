// The rules of OAuth clients and users (spec §5.3): a caller bound to a
// tenant manages only its tenant's (another tenant's are NOT_FOUND), and
// neither a client nor a user ever holds a permission its creator lacks.
import { randomBytes } from "node:crypto";
import type { OAuthClientRow, OAuthClientStore, UserRow, UserStore } from "../store/oauth-clients";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { paging } from "./paging";
import { hashSecret } from "./password-hash";
import { requireUuid, Violations } from "./violations";

export const GRANT_TYPES = ["client_credentials", "authorization_code", "refresh_token"];
export const MIN_PASSWORD = 12;
const MAX_PASSWORD = 1024;
const MAX_NAME = 200;
const MAX_ITEMS = 64;

export interface NewClientRequest {
  name: string;
  redirectUris: string[];
  grantTypes: string[];
  tenantId: string;
  roles: string[];
  permissions: string[];
  confidential: boolean;
}

export interface NewUserRequest {
  username: string;
  password: string;
  tenantId: string;
  roles: string[];
}

/** Whether a redirect URI is one the flow may return to: absolute, no fragment, https (or http on a loopback host). */
export function isRedirectUri(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.hash || value.includes("#") || url.username || url.password) return false;
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

export class OAuthClientController {
  constructor(
    private readonly clients: OAuthClientStore,
    private readonly users: UserStore,
    private readonly rolePermissions: Record<string, string[]>,
  ) {}

  async createClient(caller: Caller | undefined, request: NewClientRequest): Promise<{ row: OAuthClientRow; secret: string }> {
    const v = new Violations();
    v.bounded("name", request.name, MAX_NAME);
    if (request.redirectUris.length > MAX_ITEMS) v.add("redirect_uris", `at most ${MAX_ITEMS}`);
    request.redirectUris.forEach((uri, i) => {
      if (!isRedirectUri(uri)) v.add(`redirect_uris[${i}]`, "must be an absolute https URI (http only on localhost) without a fragment");
    });
    const grantTypes = request.grantTypes.length > 0 ? [...new Set(request.grantTypes)] : request.confidential && request.redirectUris.length === 0 ? ["client_credentials"] : ["authorization_code", "refresh_token"];
    grantTypes.forEach((g, i) => {
      if (!GRANT_TYPES.includes(g)) v.add(`grant_types[${i}]`, `unknown grant type "${g}"; one of ${GRANT_TYPES.join(", ")}`);
    });
    if (grantTypes.includes("client_credentials") && !request.confidential) v.add("grant_types", "client_credentials needs a confidential client");
    if (grantTypes.includes("authorization_code") && request.redirectUris.length === 0) v.add("redirect_uris", "authorization_code needs a redirect URI");
    const tenantId = this.rules(caller, request.tenantId, request.roles, request.permissions, v);
    if (grantTypes.includes("client_credentials") && request.roles.length === 0 && request.permissions.length === 0) v.add("permissions", "a client_credentials client needs roles or permissions");
    v.check();
    this.within(caller, tenantId, request.permissions.length > 0 ? request.permissions : request.roles.flatMap((r) => this.rolePermissions[r]!));
    const secret = request.confidential ? `hdbcs_${randomBytes(32).toString("base64url")}` : "";
    const row = await this.clients.create({
      name: request.name,
      ...(secret ? { secretHash: await hashSecret(secret) } : {}),
      redirectUris: request.redirectUris,
      grantTypes,
      tenantId,
      roles: request.roles,
      permissions: request.permissions,
      createdBy: caller?.subject ?? "",
    });
    return { row, secret };
  }

  async getClient(caller: Caller | undefined, id: string): Promise<OAuthClientRow> {
    requireUuid("client_id", id);
    const row = await this.clients.get(id);
    if (!row || (caller?.tenantId && row.tenantId !== caller.tenantId)) throw apiError("NOT_FOUND", `no OAuth client ${id}`, { client_id: id });
    return row;
  }

  async listClients(caller: Caller | undefined, tenantId: string, page: number, pageSize: number) {
    const p = paging(page, pageSize);
    const [rows, total] = await this.clients.list(this.listTenant(caller, tenantId), (p.page - 1) * p.pageSize, p.pageSize);
    return { rows, total, ...p };
  }

  async deleteClient(caller: Caller | undefined, id: string): Promise<void> {
    await this.getClient(caller, id);
    await this.clients.delete(id);
  }

  async createUser(caller: Caller | undefined, request: NewUserRequest): Promise<UserRow> {
    const v = new Violations();
    if (v.required("username", request.username)) v.bounded("username", request.username, MAX_NAME);
    password(v, request.password);
    const tenantId = this.rules(caller, request.tenantId, request.roles, [], v);
    if (request.roles.length === 0) v.add("roles", "a user needs a role");
    v.check();
    this.within(caller, tenantId, request.roles.flatMap((r) => this.rolePermissions[r]!));
    const row = await this.users.create({ username: request.username, passwordHash: await hashSecret(request.password), tenantId, roles: request.roles, createdBy: caller?.subject ?? "" });
    if (!row) throw apiError("CONFLICT", `the username ${request.username} is taken`, { username: request.username });
    return row;
  }

  async getUser(caller: Caller | undefined, id: string): Promise<UserRow> {
    requireUuid("user_id", id);
    const row = await this.users.get(id);
    if (!row || (caller?.tenantId && row.tenantId !== caller.tenantId)) throw apiError("NOT_FOUND", `no user ${id}`, { user_id: id });
    return row;
  }

  async listUsers(caller: Caller | undefined, tenantId: string, page: number, pageSize: number) {
    const p = paging(page, pageSize);
    const [rows, total] = await this.users.list(this.listTenant(caller, tenantId), (p.page - 1) * p.pageSize, p.pageSize);
    return { rows, total, ...p };
  }

  async deleteUser(caller: Caller | undefined, id: string): Promise<void> {
    await this.getUser(caller, id);
    await this.users.delete(id);
  }

  async setPassword(caller: Caller | undefined, id: string, newPassword: string): Promise<UserRow> {
    const v = new Violations();
    password(v, newPassword);
    v.check();
    await this.getUser(caller, id);
    const row = await this.users.setPassword(id, await hashSecret(newPassword));
    if (!row) throw apiError("NOT_FOUND", `no user ${id}`, { user_id: id });
    return row;
  }

  // Checks tenant, roles and permissions; resolves the tenant (a bound caller's by default).
  private rules(caller: Caller | undefined, requested: string, roles: string[], permissions: string[], v: Violations): string {
    const tenantId = requested || caller?.tenantId || "";
    v.bounded("tenant_id", tenantId, 255);
    if (roles.length > MAX_ITEMS) v.add("roles", `at most ${MAX_ITEMS}`);
    if (permissions.length > MAX_ITEMS) v.add("permissions", `at most ${MAX_ITEMS}`);
    roles.forEach((role, i) => {
      if (!this.rolePermissions[role]) v.add(`roles[${i}]`, `unknown role "${role}"; one of ${Object.keys(this.rolePermissions).join(", ")}`);
    });
    permissions.forEach((p, i) => {
      if (!/^(\*|[a-z_]+:[a-z_]+)$/.test(p)) v.add(`permissions[${i}]`, `not a permission: "${p}"`);
    });
    return tenantId;
  }

  // A bound caller acts only for its tenant, and grants nothing it lacks.
  private within(caller: Caller | undefined, tenantId: string, granted: string[]): void {
    if (caller?.tenantId && tenantId !== caller.tenantId) throw apiError("FORBIDDEN", `this token may only act for tenant ${caller.tenantId}`, { tenant_id: tenantId });
    const beyond = [...new Set(granted)].filter((p) => !caller || !(caller.permissions.has("*") || caller.permissions.has(p)));
    if (beyond.length > 0) throw apiError("FORBIDDEN", `cannot grant a permission the caller lacks: ${beyond.join(", ")}`, { permissions: beyond });
  }

  private listTenant(caller: Caller | undefined, tenantId: string): string | undefined {
    if (caller?.tenantId && tenantId && tenantId !== caller.tenantId) throw apiError("FORBIDDEN", `this token may only list tenant ${caller.tenantId}`, { tenant_id: tenantId });
    return caller?.tenantId ?? (tenantId || undefined);
  }
}

function password(v: Violations, value: string): void {
  const length = [...value].length;
  if (length < MIN_PASSWORD || length > MAX_PASSWORD) v.add("password", `must be ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
  else v.bounded("password", value, MAX_PASSWORD);
}
