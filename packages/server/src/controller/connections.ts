// The rules of connections: who owns one and who sees it (a tenant its own
// and those granted to it; the operator all), a valid and bounded address,
// a destination the policy allows, a database the server can reach with the
// credentials given, and no removal while a replication uses it.
import { randomUUID } from "node:crypto";
import { DatabaseEngine, type Connection, type ConnectionGrant } from "@heliosdb/replication-proto";
import { probeConnection } from "@heliosdb/replication-engine";
import type { ConnectionGrantRow, ConnectionGrantStore } from "../store/connection-grants";
import { sslOptions, type ConnectionRow, type ConnectionStore, type NewConnection } from "../store/connections";
import type { ReplicationStore } from "../store/replications";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { accessFor, connectionFailed, isOperator, type Access } from "./connection-access";
import { DestinationRefused, type DestinationPolicy } from "./destinations";
import { paging } from "./paging";
import { requireUuid, Violations } from "./violations";

const SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
// A DNS name, an IPv4 address or an IPv6 address (bracketed or not); nothing
// else reaches the driver (no Unix socket path, no list of hosts).
const HOST = /^([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$|^\[?[0-9a-f:.]+\]?$/i;
/** The most grants one tenant's grant may list. */
const MAX_GRANT_NAMES = 100;

/** A connection with the grants the caller may see (a tenant: its own; the operator: all). */
export type ConnectionView = ConnectionRow & { grants: ConnectionGrantRow[] };

export interface ConnectionControllerDeps {
  connections: ConnectionStore;
  grants: ConnectionGrantStore;
  replications: ReplicationStore;
  destinations: DestinationPolicy;
}

export class ConnectionController {
  constructor(private readonly deps: ConnectionControllerDeps) {}

  /** Registers a connection: the caller's tenant's, or (an operator) any tenant's or the operator's own. */
  async register(caller: Caller | undefined, c: Connection): Promise<ConnectionView> {
    const v = new Violations();
    const id = c.connectionId || randomUUID();
    if (c.connectionId) v.uuid("connection_id", c.connectionId);
    if (v.required("host", c.host) && v.bounded("host", c.host, 255, "bytes")) {
      if (c.host.startsWith("/") || c.host.startsWith("@")) v.add("host", "Unix sockets are not allowed: name a TCP host");
      else if (!HOST.test(c.host)) v.add("host", "not a host name or IP address");
    }
    if (v.required("user", c.user)) v.bounded("user", c.user, 63, "bytes");
    v.bounded("database", c.database, 63, "bytes");
    v.bounded("name", c.name, 200);
    v.bounded("password", c.password, 1024, "bytes");
    v.bounded("region", c.region, 64);
    v.bounded("owner_tenant_id", c.ownerTenantId, 128);
    if (c.port < 0 || c.port > 65535) v.add("port", "must be from 1 to 65535");
    if (c.sslmode && !SSLMODES.includes(c.sslmode)) v.add("sslmode", `one of ${SSLMODES.join(", ")}`);
    if (caller?.tenantId && c.ownerTenantId && c.ownerTenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only register connections of tenant ${caller.tenantId}`, { owner_tenant_id: c.ownerTenantId });
    }
    v.check();
    const row: NewConnection = {
      id,
      name: c.name,
      engine: DatabaseEngine[DatabaseEngine.POSTGRESQL],
      host: c.host,
      port: c.port || 5432,
      user: c.user,
      database: c.database,
      sslmode: c.sslmode || "prefer",
      region: c.region,
      ownerTenantId: caller?.tenantId ?? c.ownerTenantId,
    };
    await this.probe(caller, row, c.password);
    if (await this.deps.connections.get(id)) {
      throw apiError("CONFLICT", `a connection ${id} is already registered`, { connection_id: id });
    }
    return { ...(await this.deps.connections.insert(row, c.password)), grants: [] };
  }

  async get(caller: Caller | undefined, id: string): Promise<ConnectionView> {
    return this.view(caller, await this.visible(caller, id));
  }

  /** A page of the connections the caller may see, of one region when `region` is set. */
  async list(caller: Caller | undefined, region: string, page: number, pageSize: number) {
    const p = paging(page, pageSize);
    const [rows, total] = await this.deps.connections.list(region, (p.page - 1) * p.pageSize, p.pageSize, caller?.tenantId ?? "");
    const grants = await this.deps.grants.of(rows.map((r) => r.id));
    return { rows: rows.map((row) => ({ ...row, grants: this.grantsFor(caller, grants.get(row.id) ?? []) })), total, ...p };
  }

  async delete(caller: Caller | undefined, id: string): Promise<void> {
    const { row } = await this.visible(caller, id);
    if (!isOperator(caller) && row.ownerTenantId !== caller?.tenantId) {
      throw apiError("FORBIDDEN", "this connection is granted to your tenant by the operator; only the operator removes it", { connection_id: id });
    }
    if (await this.deps.replications.usesConnection(id)) {
      throw apiError("CONFLICT", `connection ${id} is used by a replication; stop or delete it first`, { connection_id: id });
    }
    await this.deps.connections.delete(id);
  }

  /** Grants an operator-owned connection to a tenant (replacing its earlier grant). Operators only. */
  async grant(caller: Caller | undefined, id: string, grant: ConnectionGrant | undefined): Promise<ConnectionView> {
    const access = await this.visible(caller, id);
    this.requireOperator(caller, id);
    if (access.row.ownerTenantId) {
      throw apiError("VALIDATION_ERROR", `connection ${id} belongs to tenant ${access.row.ownerTenantId}; only operator-owned connections are granted`, {
        violations: [{ field: "connection_id", description: `owned by tenant ${access.row.ownerTenantId}` }],
      });
    }
    const v = new Violations();
    const tenantId = grant?.tenantId ?? "";
    if (v.required("tenant_id", tenantId)) v.bounded("tenant_id", tenantId, 128);
    for (const [field, names] of [["databases", grant?.databases ?? []], ["schemas", grant?.schemas ?? []]] as const) {
      if (names.length === 0) v.add(field, 'name at least one ("*" : any)');
      if (names.length > MAX_GRANT_NAMES) v.add(field, `at most ${MAX_GRANT_NAMES} names`);
      names.forEach((name, i) => v.required(`${field}[${i}]`, name) && v.bounded(`${field}[${i}]`, name, 63, "bytes"));
    }
    v.check();
    await this.deps.grants.put({ connectionId: id, tenantId, databases: [...new Set(grant!.databases)], schemas: [...new Set(grant!.schemas)] });
    return this.view(caller, access);
  }

  /** Withdraws a tenant's grant; refused while a replication of that tenant uses the connection. Operators only. */
  async revoke(caller: Caller | undefined, id: string, tenantId: string): Promise<void> {
    await this.visible(caller, id);
    this.requireOperator(caller, id);
    if (!(await this.deps.grants.get(id, tenantId))) {
      throw apiError("NOT_FOUND", `connection ${id} is not granted to tenant ${tenantId}`, { connection_id: id, tenant_id: tenantId });
    }
    if (await this.deps.grants.inUse(id, tenantId)) {
      throw apiError("CONFLICT", `a replication of tenant ${tenantId} uses connection ${id}; stop or delete it first`, { connection_id: id, tenant_id: tenantId });
    }
    await this.deps.grants.revoke(id, tenantId);
  }

  // The connection if the caller may see it; NOT_FOUND alike for one that
  // does not exist and one of another tenant's.
  private async visible(caller: Caller | undefined, id: string): Promise<Access> {
    requireUuid("connection_id", id);
    const access = await accessFor(this.deps.connections, this.deps.grants, caller?.tenantId ?? "", id);
    if (!access) throw apiError("NOT_FOUND", `no connection ${id}`, { connection_id: id });
    return access;
  }

  private requireOperator(caller: Caller | undefined, id: string): void {
    if (!isOperator(caller)) throw apiError("FORBIDDEN", "only an operator (a token bound to no tenant) grants and revokes connections", { connection_id: id });
  }

  private async view(caller: Caller | undefined, { row }: Access): Promise<ConnectionView> {
    return { ...row, grants: this.grantsFor(caller, (await this.deps.grants.of([row.id])).get(row.id) ?? []) };
  }

  // A tenant sees its own grant only: which other tenants share a connection is the operator's business.
  private grantsFor(caller: Caller | undefined, grants: ConnectionGrantRow[]): ConnectionGrantRow[] {
    return isOperator(caller) ? grants : grants.filter((g) => g.tenantId === caller?.tenantId);
  }

  // The server must reach the database with these credentials, at a destination the policy allows, before it keeps them.
  private async probe(caller: Caller | undefined, c: NewConnection, password: string): Promise<void> {
    const ssl = sslOptions(c.sslmode);
    try {
      // Checked here for a clear refusal; the socket checks again as it connects.
      await this.deps.destinations.check(c.host, c.port);
      await probeConnection({
        host: c.host,
        port: c.port,
        user: c.user,
        password,
        database: c.database || "postgres",
        connectionTimeoutMillis: 5000,
        stream: this.deps.destinations.stream,
        ...(ssl ? { ssl } : {}),
      });
    } catch (e) {
      throw connectionFailed(caller, `${c.host}:${c.port}`, e, { host: c.host, port: c.port, ...(e instanceof DestinationRefused && isOperator(caller) ? { refused_by: "destination policy" } : {}) });
    }
  }
}
