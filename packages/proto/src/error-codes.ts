// The error codes of spec §6.2 and what each is on the wire: the HTTP status
// of the REST envelope and the gRPC status code of gRPC, gRPC-web and
// Connect. One table for the server, the OpenAPI document and the SDKs.
//
// gRPC codes are plain numbers (the canonical google.rpc.Code values, which
// Connect's `Code` enum shares), so this package needs no RPC runtime.
const GRPC = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export interface ErrorCodeInfo {
  /** The HTTP status of the §6.1 envelope. */
  http: number;
  /** The gRPC status code (google.rpc.Code; Connect's `Code` has the same numbers). */
  grpc: number;
  /** Whether spec §6.2 defines the code (the others are ours). */
  spec: boolean;
}

export const ERROR_CODES = {
  INVALID_REQUEST: { http: 400, grpc: GRPC.INVALID_ARGUMENT, spec: true },
  VALIDATION_ERROR: { http: 400, grpc: GRPC.INVALID_ARGUMENT, spec: true },
  UNAUTHORIZED: { http: 401, grpc: GRPC.UNAUTHENTICATED, spec: true },
  FORBIDDEN: { http: 403, grpc: GRPC.PERMISSION_DENIED, spec: true },
  NOT_FOUND: { http: 404, grpc: GRPC.NOT_FOUND, spec: true },
  CONFLICT: { http: 409, grpc: GRPC.ABORTED, spec: true },
  REPLICATION_LAG_EXCEEDED: { http: 422, grpc: GRPC.FAILED_PRECONDITION, spec: true },
  FAILOVER_IN_PROGRESS: { http: 422, grpc: GRPC.FAILED_PRECONDITION, spec: true },
  RATE_LIMIT_EXCEEDED: { http: 429, grpc: GRPC.RESOURCE_EXHAUSTED, spec: true },
  INTERNAL_ERROR: { http: 500, grpc: GRPC.INTERNAL, spec: true },
  SERVICE_UNAVAILABLE: { http: 503, grpc: GRPC.UNAVAILABLE, spec: true },
  // Not in §6: RPCs a later milestone implements, and REST paths with another method.
  UNIMPLEMENTED: { http: 501, grpc: GRPC.UNIMPLEMENTED, spec: false },
  METHOD_NOT_ALLOWED: { http: 405, grpc: GRPC.UNIMPLEMENTED, spec: false },
  // Not in §6: requests the transport refuses before they reach an RPC, at
  // the HTTP status that names the reason (a body or headers over the
  // server's limits, a body that is not JSON, a request that took too long
  // to arrive); gRPC's codes are those gRPC libraries give the same refusals.
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GRPC.RESOURCE_EXHAUSTED, spec: false },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: GRPC.INVALID_ARGUMENT, spec: false },
  HEADERS_TOO_LARGE: { http: 431, grpc: GRPC.RESOURCE_EXHAUSTED, spec: false },
  REQUEST_TIMEOUT: { http: 408, grpc: GRPC.DEADLINE_EXCEEDED, spec: false },
} as const satisfies Record<string, ErrorCodeInfo>;

/** An error code of the API: spec §6.2's, and ours beside them. */
export type ErrorCode = keyof typeof ERROR_CODES;

export const errorCodes = Object.keys(ERROR_CODES) as ErrorCode[];

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** The codes answered with an HTTP status, in the table's order. */
export function errorCodesOf(http: number): ErrorCode[] {
  return errorCodes.filter((code) => ERROR_CODES[code].http === http);
}
