// client.oauthClients: OAuthClientService — the OAuth 2.0 clients of spec §5.3. A confidential client's secret is answered once.
import { OAuthClientService, type CreateOAuthClientRequest, type CreateOAuthClientResponse, type ListOAuthClientsRequest, type OAuthClient } from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

const M = OAuthClientService.method;

export class OAuthClients extends Resource {
  /** POST /v1/oauth-clients (CreateOAuthClient): the client, and its secret when confidential (shown once). */
  create(params: Params<CreateOAuthClientRequest>, options?: CallOptions): Promise<CreateOAuthClientResponse> {
    return this.call(M.createOAuthClient, params, options);
  }

  /** GET /v1/oauth-clients/{client_id} (GetOAuthClient). */
  async get(clientId: string, options?: CallOptions): Promise<OAuthClient> {
    return (await this.call(M.getOAuthClient, { clientId }, options)).client!;
  }

  /** GET /v1/oauth-clients (ListOAuthClients). */
  list(params: Params<ListOAuthClientsRequest> = {}, options?: CallOptions): PagePromise<OAuthClient> {
    return this.paged(M.listOAuthClients, params, options);
  }

  /** DELETE /v1/oauth-clients/{client_id} (DeleteOAuthClient): its grants and tokens go with it. */
  async delete(clientId: string, options?: CallOptions): Promise<void> {
    await this.call(M.deleteOAuthClient, { clientId }, options);
  }
}
