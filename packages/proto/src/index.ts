// @heliosdb/replication-proto: the contract's generated messages and service
// descriptors, and what every REST surface shares: the REST JSON mapping, the
// REST routes, and the error codes with their HTTP and gRPC statuses.
export * from "./gen/heliosdb/replication/v1/api_key_pb";
export * from "./gen/heliosdb/replication/v1/audit_pb";
export * from "./gen/heliosdb/replication/v1/common_pb";
export * from "./gen/heliosdb/replication/v1/connection_pb";
export * from "./gen/heliosdb/replication/v1/failover_pb";
export * from "./gen/heliosdb/replication/v1/health_pb";
export * from "./gen/heliosdb/replication/v1/metrics_pb";
export * from "./gen/heliosdb/replication/v1/migration_pb";
export * from "./gen/heliosdb/replication/v1/oauth_pb";
export * from "./gen/heliosdb/replication/v1/replication_pb";
export * from "./gen/heliosdb/replication/v1/rest_pb";
export * from "./gen/heliosdb/replication/v1/routing_pb";
export { file_google_api_annotations, http } from "./gen/google/api/annotations_pb";
export * from "./gen/google/api/http_pb";
export * from "./gen/google/api/field_behavior_pb";
export * from "./gen/google/api/field_info_pb";
export * from "./rest/index";
export { services } from "./services";
export { ERROR_CODES, errorCodes, errorCodesOf, isErrorCode, type ErrorCode, type ErrorCodeInfo } from "./error-codes";
export { PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX } from "./pagination";
