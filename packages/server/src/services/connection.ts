// ConnectionService: the databases that a connection_id names. Passwords are
// accepted, never returned. Translates messages; the controller decides.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ConnectionGrantSchema, ConnectionSchema, ConnectionService, DatabaseEngine, ListConnectionsResponseSchema } from "@heliosdb/replication-proto";
import type { ConnectionController, ConnectionView } from "../controller/connections";
import { callerOf } from "./context";
import { pagination } from "./views";

export function connectionMessage(row: ConnectionView) {
  return create(ConnectionSchema, {
    connectionId: row.id,
    name: row.name,
    engine: DatabaseEngine.POSTGRESQL,
    host: row.host,
    port: row.port,
    user: row.user,
    database: row.database,
    sslmode: row.sslmode,
    region: row.region,
    createdAt: timestampFromDate(row.createdAt),
    passwordSet: row.hasPassword,
    ownerTenantId: row.ownerTenantId,
    grants: row.grants.map((g) =>
      create(ConnectionGrantSchema, { tenantId: g.tenantId, databases: g.databases, schemas: g.schemas, createdAt: timestampFromDate(g.createdAt) }),
    ),
  });
}

export function connectionService(controller: ConnectionController): ServiceImpl<typeof ConnectionService> {
  return {
    async registerConnection(req, ctx) {
      return { connection: connectionMessage(await controller.register(callerOf(ctx), req.connection ?? create(ConnectionSchema))) };
    },
    async getConnection(req, ctx) {
      return { connection: connectionMessage(await controller.get(callerOf(ctx), req.connectionId)) };
    },
    async listConnections(req, ctx) {
      const { rows, total, page, pageSize } = await controller.list(callerOf(ctx), req.region, req.page, req.pageSize);
      return create(ListConnectionsResponseSchema, { connections: rows.map(connectionMessage), pagination: pagination(page, pageSize, total) });
    },
    async deleteConnection(req, ctx) {
      await controller.delete(callerOf(ctx), req.connectionId);
      return {};
    },
    async grantConnection(req, ctx) {
      return { connection: connectionMessage(await controller.grant(callerOf(ctx), req.connectionId, req.grant)) };
    },
    async revokeConnectionGrant(req, ctx) {
      await controller.revoke(callerOf(ctx), req.connectionId, req.tenantId);
      return {};
    },
  };
}
