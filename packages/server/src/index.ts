// @heliosdb/replication-server: the reference server, for embedding and tests.
export { startApp, type AppOptions, type RunningApp } from "./app";
export { serveConfig, describeConfig, type ServeConfig } from "./config";
export { createPool, migrate } from "./store/db";
export { issueToken, loadSigningKey, type Principal, type TokenRequest } from "./transport/auth";
export { ERRORS, apiError, type ErrorCode } from "./transport/errors";
