// client.apiKeys: ApiKeyService — API keys (spec §5.2). A key's secret is answered once, by create and rotate.
import { ApiKeyService, type ApiKey, type CreateApiKeyRequest, type CreateApiKeyResponse, type ListApiKeysRequest, type RotateApiKeyResponse } from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

const M = ApiKeyService.method;

export class ApiKeys extends Resource {
  /** POST /v1/api-keys (CreateApiKey): the key and its secret (keep it: it is never shown again). */
  create(params: Params<CreateApiKeyRequest>, options?: CallOptions): Promise<CreateApiKeyResponse> {
    return this.call(M.createApiKey, params, options);
  }

  /** GET /v1/api-keys/{key_id} (GetApiKey). */
  async get(keyId: string, options?: CallOptions): Promise<ApiKey> {
    return (await this.call(M.getApiKey, { keyId }, options)).apiKey!;
  }

  /** GET /v1/api-keys (ListApiKeys). */
  list(params: Params<ListApiKeysRequest> = {}, options?: CallOptions): PagePromise<ApiKey> {
    return this.paged(M.listApiKeys, params, options);
  }

  /** POST /v1/api-keys/{key_id}/revoke (RevokeApiKey): refused at once on every server. */
  async revoke(keyId: string, options?: CallOptions): Promise<ApiKey> {
    return (await this.call(M.revokeApiKey, { keyId }, options)).apiKey!;
  }

  /**
   * POST /v1/api-keys/{key_id}/rotate (RotateApiKey): a new key and secret in
   * its place; the old secret is still accepted for `overlapSeconds` (default
   * a day, 0: refused at once), so that its users can move to the new one.
   */
  rotate(keyId: string, params: { overlapSeconds?: number } = {}, options?: CallOptions): Promise<RotateApiKeyResponse> {
    return this.call(M.rotateApiKey, { keyId, ...params }, options);
  }
}
