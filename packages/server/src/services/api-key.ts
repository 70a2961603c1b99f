// ApiKeyService: API keys (spec §5.2). The secret is in the create and
// rotate responses only. Translates messages; the controller decides.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ApiKeySchema, ApiKeyService, ApiKeyStatus, ListApiKeysResponseSchema, RateLimitTier } from "@heliosdb/replication-proto";
import { TIERS, type ApiKeyController, type KeyCaller } from "../controller/api-keys";
import type { ApiKeyRow } from "../store/api-keys";
import { callerOf } from "./context";
import { pagination } from "./views";

// RateLimitTier values by their spec name, and back.
const TIER_VALUES: Record<string, RateLimitTier> = {
  Free: RateLimitTier.FREE,
  Standard: RateLimitTier.STANDARD,
  Premium: RateLimitTier.PREMIUM,
  Enterprise: RateLimitTier.ENTERPRISE,
};
const tierName = (tier: RateLimitTier) => TIERS.find((t) => TIER_VALUES[t] === tier) ?? "";

export function apiKeyMessage(row: ApiKeyRow) {
  const now = Date.now();
  const status = row.revokedAt
    ? ApiKeyStatus.REVOKED
    : row.expiresAt && row.expiresAt.getTime() <= now
      ? ApiKeyStatus.EXPIRED
      : ApiKeyStatus.ACTIVE;
  return create(ApiKeySchema, {
    keyId: row.id,
    name: row.name,
    prefix: row.prefix,
    tenantId: row.tenantId,
    roles: row.roles,
    permissions: row.permissions,
    tier: TIER_VALUES[row.tier] ?? RateLimitTier.UNSPECIFIED,
    status,
    createdBy: row.createdBy,
    createdAt: timestampFromDate(row.createdAt),
    ...(row.expiresAt ? { expiresAt: timestampFromDate(row.expiresAt) } : {}),
    ...(row.lastUsedAt ? { lastUsedAt: timestampFromDate(row.lastUsedAt) } : {}),
    ...(row.revokedAt ? { revokedAt: timestampFromDate(row.revokedAt) } : {}),
    replacedByKeyId: row.replacedBy ?? "",
    rotatedFromKeyId: row.rotatedFrom ?? "",
  });
}

export function apiKeyService(controller: ApiKeyController): ServiceImpl<typeof ApiKeyService> {
  return {
    async createApiKey(req, ctx) {
      const { row, secret } = await controller.create(callerOf(ctx) as KeyCaller | undefined, {
        name: req.name,
        tenantId: req.tenantId,
        roles: req.roles,
        permissions: req.permissions,
        tier: tierName(req.tier),
        ...(req.expiresAt ? { expiresAt: timestampDate(req.expiresAt) } : {}),
      });
      return { apiKey: apiKeyMessage(row), secret };
    },
    async getApiKey(req, ctx) {
      return { apiKey: apiKeyMessage(await controller.get(callerOf(ctx), req.keyId)) };
    },
    async listApiKeys(req, ctx) {
      const { rows, total, page, pageSize } = await controller.list(callerOf(ctx), req.tenantId, req.includeRevoked, req.page, req.pageSize);
      return create(ListApiKeysResponseSchema, { apiKeys: rows.map(apiKeyMessage), pagination: pagination(page, pageSize, total) });
    },
    async revokeApiKey(req, ctx) {
      return { apiKey: apiKeyMessage(await controller.revoke(callerOf(ctx), req.keyId)) };
    },
    async rotateApiKey(req, ctx) {
      const { row, secret, previous } = await controller.rotate(callerOf(ctx), req.keyId, req.overlapSeconds);
      return { apiKey: apiKeyMessage(row), secret, previous: apiKeyMessage(previous) };
    },
  };
}
