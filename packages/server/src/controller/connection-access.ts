// Which connections a tenant may use, and how much of each: its own in
// full, an operator-owned one within its grant, any other not at all — and
// then it must not learn that the connection exists. What a tenant is told
// when a connection fails is decided here too.
import type { JsonObject } from "@bufbuild/protobuf";
import type { ConnectionGrantRow, ConnectionGrantStore } from "../store/connection-grants";
import type { ConnectionRow, ConnectionStore } from "../store/connections";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";

/** A connection as one tenant may use it: `grant` limits it; none: all of it (its own, or the operator's view). */
export interface Access {
  row: ConnectionRow;
  grant?: ConnectionGrantRow;
}

/** An operator: a caller bound to no tenant. It sees every connection and grants the operator's. */
export function isOperator(caller: Caller | undefined): boolean {
  return !caller?.tenantId;
}

/** The connection as `tenantId` may use it ("" : the operator, everything); undefined when it may not, or it does not exist. */
export async function accessFor(connections: ConnectionStore, grants: ConnectionGrantStore, tenantId: string, id: string): Promise<Access | undefined> {
  const row = await connections.get(id);
  if (!row) return undefined;
  if (!tenantId || row.ownerTenantId === tenantId) return { row };
  if (row.ownerTenantId !== "") return undefined;
  const grant = await grants.get(id, tenantId);
  return grant ? { row, grant } : undefined;
}

/** Whether a grant's list ("*" : any) names `name`. */
export function permits(list: string[], name: string): boolean {
  return list.includes("*") || list.includes(name);
}

/** Why a replication may not read or write `schema`; undefined when it may. */
export function systemSchema(schema: string): string | undefined {
  if (schema.startsWith("pg_")) return "a PostgreSQL system schema";
  if (schema === "information_schema") return "PostgreSQL's information schema";
  if (schema === "heliosdb_replication") return "the replication engine's checkpoint schema";
  if (schema === "heliosdb_vault") return "the token vault's schema";
  return undefined;
}

/**
 * The §6 error of a connection that failed (or that the destination policy
 * refused). An operator learns why; anyone else only that it failed, so that
 * the API does not tell an open port from a closed one, a host that answers
 * from one that does not, or a wrong password from a missing user.
 */
export function connectionFailed(caller: Caller | undefined, what: string, error: unknown, details: JsonObject): Error {
  if (!isOperator(caller)) return apiError("VALIDATION_ERROR", "the connection failed", details);
  const reason = error instanceof Error ? error.message : String(error);
  return apiError("VALIDATION_ERROR", `cannot connect to ${what}: ${reason}`, { ...details, reason });
}
