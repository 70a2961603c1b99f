// Where a new replication would read and write, checked on the databases
// themselves before anything is created: both databases exist, neither is
// the control plane's own, and the target is not the source. The last is
// what the initial sync would destroy: it truncates the target's tables
// before it copies into them, and with the source as its target that is
// the tenant's data. "Same" is the same cluster (its system identifier, so
// two host names of one server are one), database and schema.
import type { ConnectionInfo } from "@heliosdb/replication-proto";
import { probeDatabase, type DatabaseProbe } from "@heliosdb/replication-engine";
import type pg from "pg";
import type { DatabaseIdentity } from "../store/control-plane";
import { apiError } from "../transport/errors";
import type { Caller } from "./caller";
import { connectionFailed } from "./connection-access";

export interface Endpoint {
  info: ConnectionInfo;
  config: pg.ClientConfig;
}

export async function checkPlacement(caller: Caller | undefined, source: Endpoint, target: Endpoint, controlPlane: () => Promise<DatabaseIdentity>): Promise<void> {
  const probe = async (side: "source" | "target", e: Endpoint): Promise<DatabaseProbe> => {
    try {
      return await probeDatabase({ ...e.config, connectionTimeoutMillis: 5000 });
    } catch (error) {
      throw connectionFailed(caller, `the ${side}`, error, { field: side });
    }
  };
  const [s, t] = await Promise.all([probe("source", source), probe("target", target)]);
  if (!s.exists) refuse("source.database", `no database "${source.info.database}" on the source's server`);
  if (!t.exists) refuse("target.database", `no database "${target.info.database}" on the target's server; create it first`);
  const control = await controlPlane();
  for (const [side, e, p] of [["source", source, s], ["target", target, t]] as const) {
    if (p.exists && p.systemIdentifier === control.systemIdentifier && e.info.database === control.database) {
      refuse(`${side}.database`, `"${e.info.database}" is the control plane's own database`);
    }
  }
  if (s.exists && t.exists && s.systemIdentifier === t.systemIdentifier && source.info.database === target.info.database && source.info.schema === target.info.schema) {
    refuse("target", `the target is the source itself (the same server, database "${target.info.database}" and schema "${target.info.schema}"): name another database or schema`);
  }
}

function refuse(field: string, description: string): never {
  throw apiError("VALIDATION_ERROR", `${field}: ${description}`, { violations: [{ field, description }] });
}
