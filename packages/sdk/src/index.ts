// @heliosdb/replication-sdk: the client of spec §9.1, its errors (one class
// per §6.2 code), the §6.3 retry policy and paginated lists.
export { HeliosDBReplicationClient, type ClientOptions } from "./client";
export { Replications } from "./resources/replications";
export type { Params } from "./internal/params";
export type { CallOptions } from "./internal/transport";
export * from "./core/index";
