// ConnectionService: the databases that a connection_id names. Passwords are
// accepted, never returned.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { ConnectionSchema, ConnectionService, DatabaseEngine, ListConnectionsResponseSchema } from "@heliosdb/replication-proto";
import type { ConnectionController } from "../controller/connections";
import { requireUuid } from "../controller/violations";
import type { ConnectionRow, ConnectionStore } from "../store/connections";
import { pagination, paging } from "./views";

export function connectionMessage(row: ConnectionRow) {
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
  });
}

export function connectionService(controller: ConnectionController, store: ConnectionStore): ServiceImpl<typeof ConnectionService> {
  return {
    async registerConnection(req) {
      return { connection: connectionMessage(await controller.register(req.connection ?? create(ConnectionSchema))) };
    },
    async getConnection(req) {
      requireUuid("connection_id", req.connectionId);
      return { connection: connectionMessage(await controller.get(req.connectionId)) };
    },
    async listConnections(req) {
      const { page, pageSize } = paging(req.page, req.pageSize);
      const [rows, total] = await store.list(req.region, (page - 1) * pageSize, pageSize);
      return create(ListConnectionsResponseSchema, { connections: rows.map(connectionMessage), pagination: pagination(page, pageSize, total) });
    },
    async deleteConnection(req) {
      requireUuid("connection_id", req.connectionId);
      await controller.delete(req.connectionId);
      return {};
    },
  };
}
