// The rules of API keys: a caller bound to a tenant manages only its
// tenant's keys (another tenant's are NOT_FOUND), and a key never holds more
// than its creator: no permission the creator lacks, no tier above the
// creator's own key's.
import type { ApiKeyRow, ApiKeyStore } from "../store/api-keys";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { paging } from "./paging";
import { requireUuid, Violations } from "./violations";

/** The tiers of spec §7.2, lowest first. */
export const TIERS = ["Free", "Standard", "Premium", "Enterprise"];
/** How long a rotated key keeps working by default, and at most. */
export const DEFAULT_OVERLAP_SECONDS = 86_400;
export const MAX_OVERLAP_SECONDS = 30 * 86_400;
const MAX_NAME = 200;
const MAX_ITEMS = 64;

/** The caller as key rules see it: who, what it holds, its tenant, and its key's tier when it is a key. */
export interface KeyCaller extends Caller {
  tier?: string;
}

export interface NewKeyRequest {
  name: string;
  tenantId: string;
  roles: string[];
  permissions: string[];
  /** A tier of TIERS; "" for the default (Standard). */
  tier: string;
  expiresAt?: Date;
}

export class ApiKeyController {
  constructor(
    private readonly keys: ApiKeyStore,
    private readonly rolePermissions: Record<string, string[]>,
  ) {}

  async create(caller: KeyCaller | undefined, request: NewKeyRequest): Promise<{ row: ApiKeyRow; secret: string }> {
    const v = new Violations();
    const tenantId = request.tenantId || caller?.tenantId || "";
    if (request.name.length > MAX_NAME) v.add("name", `at most ${MAX_NAME} characters`);
    if (request.roles.length > MAX_ITEMS) v.add("roles", `at most ${MAX_ITEMS}`);
    if (request.permissions.length > MAX_ITEMS) v.add("permissions", `at most ${MAX_ITEMS}`);
    request.roles.forEach((role, i) => {
      if (!this.rolePermissions[role]) v.add(`roles[${i}]`, `unknown role "${role}"; one of ${Object.keys(this.rolePermissions).join(", ")}`);
    });
    request.permissions.forEach((p, i) => {
      if (!/^(\*|[a-z_]+:[a-z_]+)$/.test(p)) v.add(`permissions[${i}]`, `not a permission: "${p}"`);
    });
    if (request.roles.length === 0 && request.permissions.length === 0) v.add("permissions", "a key needs roles or permissions");
    if (tenantId.length > 255) v.add("tenant_id", "at most 255 characters");
    if (request.expiresAt && request.expiresAt.getTime() <= Date.now()) v.add("expires_at", "must be in the future");
    const tier = request.tier || "Standard";
    v.check();
    if (caller?.tenantId && tenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only act for tenant ${caller.tenantId}`, { tenant_id: tenantId });
    }
    const granted = request.permissions.length > 0 ? request.permissions : request.roles.flatMap((r) => this.rolePermissions[r]!);
    const beyond = [...new Set(granted)].filter((p) => !holds(caller, p));
    if (beyond.length > 0) {
      throw apiError("FORBIDDEN", `a key cannot hold a permission its creator lacks: ${beyond.join(", ")}`, { permissions: beyond });
    }
    if (caller?.tier && TIERS.indexOf(tier) > TIERS.indexOf(caller.tier)) {
      throw apiError("FORBIDDEN", `a key cannot have a tier above its creator's (${caller.tier})`, { tier });
    }
    return this.keys.create({
      name: request.name,
      tenantId,
      roles: request.roles,
      permissions: request.permissions,
      tier,
      createdBy: caller?.subject ?? "",
      ...(request.expiresAt ? { expiresAt: request.expiresAt } : {}),
    });
  }

  async get(caller: Caller | undefined, id: string): Promise<ApiKeyRow> {
    requireUuid("key_id", id);
    const row = await this.keys.get(id);
    // Another tenant's key is as missing as one that never was.
    if (!row || (caller?.tenantId && row.tenantId !== caller.tenantId)) throw apiError("NOT_FOUND", `no API key ${id}`, { key_id: id });
    return row;
  }

  async list(caller: Caller | undefined, tenantId: string, includeRevoked: boolean, page: number, pageSize: number) {
    const p = paging(page, pageSize);
    // A tenant-bound caller's list is its tenant's, as for replications.
    if (caller?.tenantId && tenantId && tenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only list tenant ${caller.tenantId}`, { tenant_id: tenantId });
    }
    const tenant = caller?.tenantId ?? (tenantId || undefined);
    const [rows, total] = await this.keys.list(tenant, includeRevoked, (p.page - 1) * p.pageSize, p.pageSize);
    return { rows, total, ...p };
  }

  async revoke(caller: Caller | undefined, id: string): Promise<ApiKeyRow> {
    await this.get(caller, id);
    return (await this.keys.revoke(id))!;
  }

  async rotate(caller: Caller | undefined, id: string, overlapSeconds: number | undefined): Promise<{ row: ApiKeyRow; secret: string; previous: ApiKeyRow }> {
    const overlap = overlapSeconds ?? DEFAULT_OVERLAP_SECONDS;
    if (overlap < 0 || overlap > MAX_OVERLAP_SECONDS) new Violations().add("overlap_seconds", `must be from 0 to ${MAX_OVERLAP_SECONDS}`).check();
    const row = await this.get(caller, id);
    const expired = !!row.expiresAt && row.expiresAt.getTime() <= Date.now();
    const rotated = row.revokedAt || row.replacedBy || expired ? undefined : await this.keys.rotate(id, overlap, caller?.subject ?? "");
    if (!rotated) {
      const why = row.revokedAt ? "was revoked" : expired ? "has expired" : "was already rotated";
      throw apiError("CONFLICT", `API key ${id} ${why}; create a new key instead`, { key_id: id });
    }
    return rotated;
  }
}

function holds(caller: Caller | undefined, permission: string): boolean {
  return !!caller && (caller.permissions.has("*") || caller.permissions.has(permission));
}
