// @heliosdb/replication-engine: the data plane, PostgreSQL to PostgreSQL.
export { ReplicationPipeline, SchemaChangeError, type EngineDeps, type EngineEvent, type ReplicationSpec, type StartOptions } from "./pipeline";
export type { EngineStatus, Health, History, ObservedFigures, RetryState } from "./pipeline/figures";
export { Backoff, errorCode, isRetryable, sideOf, sqlStateOf, type Side } from "./failure";
export * from "./cutover/index";
export { validate } from "./pipeline/setup";
export { WorkerPool } from "./pipeline/worker-pool";
export { PreflightError, type PreflightProblem } from "./source/preflight";
export { RowFilterError } from "./source/publication";
export { measureCopySpeed, probeConnection, probeDatabase, type DatabaseProbe } from "./source/probe";
export { BatchIntegrityError } from "./codec/codec";
export { MasterKeyProvider, type KeyProvider, type KeyPurpose } from "./transform/keys";
export { PgTokenVault, type TokenVault } from "./transform/token-vault";
export { TransformValidationError } from "./transform/plan";
export { formatLsn, parseLsn, type Lsn } from "./types";
export { connect } from "./connect";
