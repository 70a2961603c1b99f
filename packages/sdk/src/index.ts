// @heliosdb/replication-sdk: the client of spec §9.1, its errors (one class
// per §6.2 code), the §6.3 retry policy and paginated lists.
export { HeliosDBReplicationClient, type ClientOptions, type ConnectTransportOption } from "./client";
export { ApiKeys } from "./resources/api-keys";
export { Audit } from "./resources/audit";
export { Connections } from "./resources/connections";
export { Failovers } from "./resources/failovers";
export { Health } from "./resources/health";
export { Metrics } from "./resources/metrics";
export { Migrations } from "./resources/migrations";
export { OAuthClients } from "./resources/oauth-clients";
export { Replications } from "./resources/replications";
export { Routing } from "./resources/routing";
export { Users } from "./resources/users";
export type { Params } from "./internal/params";
export { clientCredentials, type OAuthClientCredentials } from "./lib/oauth";
export { watchTenantRouting, type WatchOptions } from "./lib/watch-tenant-routing";
export type { CallOptions } from "./internal/transport";
export * from "./core/index";
