// The rules of connections: a valid address, a database the server can
// reach with the credentials given, pages of the spec's size, and no
// removal while a replication uses it.
import { randomUUID } from "node:crypto";
import { DatabaseEngine, type Connection } from "@heliosdb/replication-proto";
import { probeConnection } from "@heliosdb/replication-engine";
import { sslOptions, type ConnectionRow, type ConnectionStore } from "../store/connections";
import type { ReplicationStore } from "../store/replications";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { paging } from "./paging";
import { requireUuid, Violations } from "./violations";

const SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/**
 * Every method takes the caller: connections belong to no tenant yet, so a
 * caller with the RPC's permission sees every one; the tenant rules of
 * connections (owners, grants: the security issue) belong here.
 */
export class ConnectionController {
  constructor(
    private readonly connections: ConnectionStore,
    private readonly replications: ReplicationStore,
  ) {}

  async register(_caller: Caller | undefined, c: Connection): Promise<ConnectionRow> {
    const v = new Violations();
    const id = c.connectionId || randomUUID();
    if (c.connectionId) v.uuid("connection_id", c.connectionId);
    v.required("host", c.host);
    v.required("user", c.user);
    if (c.port < 0 || c.port > 65535) v.add("port", "must be from 1 to 65535");
    if (c.sslmode && !SSLMODES.includes(c.sslmode)) v.add("sslmode", `one of ${SSLMODES.join(", ")}`);
    v.check();
    const row = {
      id,
      name: c.name,
      engine: DatabaseEngine[DatabaseEngine.POSTGRESQL],
      host: c.host,
      port: c.port || 5432,
      user: c.user,
      database: c.database,
      sslmode: c.sslmode || "prefer",
      region: c.region,
    };
    await this.probe(row, c.password);
    if (await this.connections.get(id)) {
      throw apiError("CONFLICT", `a connection ${id} is already registered`, { connection_id: id });
    }
    return this.connections.insert(row, c.password);
  }

  async get(_caller: Caller | undefined, id: string): Promise<ConnectionRow> {
    requireUuid("connection_id", id);
    const row = await this.connections.get(id);
    if (!row) throw apiError("NOT_FOUND", `no connection ${id}`, { connection_id: id });
    return row;
  }

  /** A page of the connections, of one region when `region` is set. */
  async list(_caller: Caller | undefined, region: string, page: number, pageSize: number) {
    const p = paging(page, pageSize);
    const [rows, total] = await this.connections.list(region, (p.page - 1) * p.pageSize, p.pageSize);
    return { rows, total, ...p };
  }

  async delete(caller: Caller | undefined, id: string): Promise<void> {
    await this.get(caller, id);
    if (await this.replications.usesConnection(id)) {
      throw apiError("CONFLICT", `connection ${id} is used by a replication; stop or delete it first`, { connection_id: id });
    }
    await this.connections.delete(id);
  }

  // The server must reach the database with these credentials before it keeps them.
  private async probe(c: Omit<ConnectionRow, "hasPassword" | "createdAt">, password: string): Promise<void> {
    const ssl = sslOptions(c.sslmode);
    try {
      await probeConnection({
        host: c.host,
        port: c.port,
        user: c.user,
        password,
        database: c.database || "postgres",
        connectionTimeoutMillis: 5000,
        ...(ssl ? { ssl } : {}),
      });
    } catch (e) {
      throw apiError("VALIDATION_ERROR", `cannot connect to ${c.host}:${c.port}: ${(e as Error).message}`, { host: c.host, port: c.port });
    }
  }
}
