// @heliosdb/replication-sdk. This first part holds the SDK's core — its
// errors (one class per §6.2 code), the §6.3 retry policy and paginated
// lists; the client and its transports build on it.
export * from "./core/index";
