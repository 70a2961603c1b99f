// One table maps every error code of spec §6 to its HTTP status and gRPC
// code (the contract's, shared with the OpenAPI document and the SDKs);
// errors travel as ConnectError with an ApiError detail, and leave as the §6
// envelope over REST. Nothing else decides a status.
import { create, toJson, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ApiErrorSchema, ERROR_CODES, errorCodes, isErrorCode, RestMappingError, type ApiError, type ErrorCode } from "@heliosdb/replication-proto";

export type { ErrorCode };

/** The §6 table (@heliosdb/replication-proto's ERROR_CODES) with Connect's codes. */
export const ERRORS = ERROR_CODES as Record<ErrorCode, { http: number; grpc: Code; spec: boolean }>;

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
 * failures as INVALID_REQUEST with their violations, a library's refusal by
 * its code, and the rest — a bug, or a library's internal failure — as
 * INTERNAL_ERROR without their text (it may hold internals), handed to `log`.
 */
export function asApiError(error: unknown, log: (e: unknown) => void = () => undefined): ConnectError {
  if (error instanceof ConnectError && apiErrorOf(error)) return error;
  if (error instanceof RestMappingError) {
    return apiError("INVALID_REQUEST", "the request does not fit the API", {
      violations: error.violations.map((v) => ({ field: v.field, description: v.description })),
    });
  }
  if (error instanceof ConnectError && error.code === Code.Canceled) {
    // The client went away: nobody reads the answer, and nothing failed that a log should show.
    return apiError("INTERNAL_ERROR", "the call was canceled");
  }
  if (error instanceof ConnectError && error.code !== Code.Internal) {
    const code = errorCodes.find((c) => ERRORS[c].grpc === error.code && c !== "METHOD_NOT_ALLOWED");
    if (code) return apiError(code, error.rawMessage);
  }
  log(error);
  return apiError("INTERNAL_ERROR", "the server failed to handle the request; it has been logged under its request id");
}

export function apiErrorOf(error: ConnectError): ApiError | undefined {
  return error.findDetails(ApiErrorSchema)[0];
}

/** The REST envelope of §6.1 and its HTTP status. */
export function envelope(error: ConnectError, requestId: string): { status: number; body: JsonObject } {
  const detail = apiErrorOf(error) ?? apiErrorOf(asApiError(error))!;
  const code = isErrorCode(detail.code) ? detail.code : "INTERNAL_ERROR";
  const body = toJson(ApiErrorSchema, { ...detail, requestId }, { useProtoFieldName: true }) as JsonObject;
  if (!("details" in body)) body.details = {};
  return { status: ERRORS[code].http, body: { error: body } };
}
