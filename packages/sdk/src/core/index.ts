// @heliosdb/replication-sdk/core: the errors, the retry policy and the pages
// every resource of the client uses, for callers that catch, retry or page
// themselves.
export * from "./errors";
export * from "./retry";
export * from "./pagination";
export * from "./streams";
