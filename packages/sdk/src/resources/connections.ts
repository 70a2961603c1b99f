// client.connections: ConnectionService — the databases a connection_id names, and which tenants may use them.
import { ConnectionService, type Connection, type ConnectionGrant, type ListConnectionsRequest } from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

const M = ConnectionService.method;

export class Connections extends Resource {
  /** POST /v1/connections (RegisterConnection); the password is sealed by the server and never answered. */
  async register(connection: Params<Connection>, options?: CallOptions): Promise<Connection> {
    return (await this.call(M.registerConnection, { connection }, options)).connection!;
  }

  /** GET /v1/connections/{connection_id} (GetConnection). */
  async get(connectionId: string, options?: CallOptions): Promise<Connection> {
    return (await this.call(M.getConnection, { connectionId }, options)).connection!;
  }

  /** GET /v1/connections (ListConnections). */
  list(params: Params<ListConnectionsRequest> = {}, options?: CallOptions): PagePromise<Connection> {
    return this.paged(M.listConnections, params, options);
  }

  /** DELETE /v1/connections/{connection_id} (DeleteConnection). */
  async delete(connectionId: string, options?: CallOptions): Promise<void> {
    await this.call(M.deleteConnection, { connectionId }, options);
  }

  /** POST /v1/connections/{connection_id}/grants (GrantConnection): lets a tenant use the connection. */
  async grant(connectionId: string, grant: Params<ConnectionGrant>, options?: CallOptions): Promise<Connection> {
    return (await this.call(M.grantConnection, { connectionId, grant }, options)).connection!;
  }

  /** DELETE /v1/connections/{connection_id}/grants/{tenant_id} (RevokeConnectionGrant). */
  async revokeGrant(connectionId: string, tenantId: string, options?: CallOptions): Promise<void> {
    await this.call(M.revokeConnectionGrant, { connectionId, tenantId }, options);
  }
}
