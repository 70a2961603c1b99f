// One table maps every error code of spec §6 to its HTTP status and gRPC
// code; errors travel as ConnectError with an ApiError detail, and leave as
// the §6 envelope over REST. Nothing else decides a status.
import { create, toJson, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ApiErrorSchema, RestMappingError, type ApiError } from "@heliosdb/replication-proto";

export type ErrorCode =
  | "INVALID_REQUEST"
  | "VALIDATION_ERROR"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "CONFLICT"
  | "REPLICATION_LAG_EXCEEDED"
  | "FAILOVER_IN_PROGRESS"
  | "RATE_LIMIT_EXCEEDED"
  | "INTERNAL_ERROR"
  | "SERVICE_UNAVAILABLE"
  | "UNIMPLEMENTED"
  | "METHOD_NOT_ALLOWED";

export const ERRORS: Record<ErrorCode, { http: number; grpc: Code }> = {
  INVALID_REQUEST: { http: 400, grpc: Code.InvalidArgument },
  VALIDATION_ERROR: { http: 400, grpc: Code.InvalidArgument },
  UNAUTHORIZED: { http: 401, grpc: Code.Unauthenticated },
  FORBIDDEN: { http: 403, grpc: Code.PermissionDenied },
  NOT_FOUND: { http: 404, grpc: Code.NotFound },
  CONFLICT: { http: 409, grpc: Code.Aborted },
  REPLICATION_LAG_EXCEEDED: { http: 422, grpc: Code.FailedPrecondition },
  FAILOVER_IN_PROGRESS: { http: 422, grpc: Code.FailedPrecondition },
  RATE_LIMIT_EXCEEDED: { http: 429, grpc: Code.ResourceExhausted },
  INTERNAL_ERROR: { http: 500, grpc: Code.Internal },
  SERVICE_UNAVAILABLE: { http: 503, grpc: Code.Unavailable },
  // Not in §6: RPCs a later milestone implements, and REST paths with another method.
  UNIMPLEMENTED: { http: 501, grpc: Code.Unimplemented },
  METHOD_NOT_ALLOWED: { http: 405, grpc: Code.Unimplemented },
};

/** Raises a spec error: `details` are facts for the client (fields, states, values). */
export function apiError(code: ErrorCode, message: string, details: JsonObject = {}, retryAfterSeconds?: number): ConnectError {
  const detail = create(ApiErrorSchema, {
    code,
    message,
    details,
    timestamp: timestampFromDate(new Date()),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  });
  return new ConnectError(message, ERRORS[code].grpc, undefined, [{ desc: ApiErrorSchema, value: detail }]);
}

/**
 * Any error as a ConnectError carrying an ApiError: ours as they are, mapping
 * failures as INVALID_REQUEST with their violations, the rest as
 * INTERNAL_ERROR without their text (it may hold internals).
 */
export function asApiError(error: unknown, log: (e: unknown) => void = () => undefined): ConnectError {
  if (error instanceof ConnectError && apiErrorOf(error)) return error;
  if (error instanceof RestMappingError) {
    return apiError("INVALID_REQUEST", "the request does not fit the API", {
      violations: error.violations.map((v) => ({ field: v.field, description: v.description })),
    });
  }
  if (error instanceof ConnectError) {
    const code = (Object.keys(ERRORS) as ErrorCode[]).find((c) => ERRORS[c].grpc === error.code && c !== "METHOD_NOT_ALLOWED");
    return apiError(code ?? "INTERNAL_ERROR", error.rawMessage);
  }
  log(error);
  return apiError("INTERNAL_ERROR", "the server failed to handle the request; it has been logged");
}

export function apiErrorOf(error: ConnectError): ApiError | undefined {
  return error.findDetails(ApiErrorSchema)[0];
}

/** The REST envelope of §6.1 and its HTTP status. */
export function envelope(error: ConnectError, requestId: string): { status: number; body: JsonObject } {
  const detail = apiErrorOf(error) ?? apiErrorOf(asApiError(error))!;
  const code = (detail.code as ErrorCode) in ERRORS ? (detail.code as ErrorCode) : "INTERNAL_ERROR";
  const body = toJson(ApiErrorSchema, { ...detail, requestId }, { useProtoFieldName: true }) as JsonObject;
  if (!("details" in body)) body.details = {};
  return { status: ERRORS[code].http, body: { error: body } };
}
