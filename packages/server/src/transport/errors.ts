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
 * failures as INVALID_REQUEST with their violations, Connect's refusals of
 * what the client sent in our words (connectRefusal), a library's other
 * errors by their code, and the rest — a bug, or a library's internal
 * failure — as INTERNAL_ERROR without their text (it may hold internals),
 * handed to `log`. `input` names the RPC's request message, when known.
 */
export function asApiError(error: unknown, log: (e: unknown) => void = () => undefined, input?: string): ConnectError {
  if (error instanceof ConnectError && apiErrorOf(error)) return error;
  if (error instanceof RestMappingError) {
    return apiError("INVALID_REQUEST", "the request does not fit the API", {
      violations: error.violations.map((v) => ({ field: v.field, description: v.description })),
    });
  }
  if (error instanceof ConnectError) {
    const refusal = connectRefusal(error, input);
    if (refusal) return refusal;
    // The client went away: nobody reads the answer, and nothing failed that a log should show.
    if (error.code === Code.Canceled) return apiError("INTERNAL_ERROR", "the call was canceled");
    if (error.code !== Code.Internal) {
      const code = errorCodes.find((c) => ERRORS[c].grpc === error.code && c !== "METHOD_NOT_ALLOWED");
      if (code) return apiError(code, error.rawMessage);
    }
  }
  log(error);
  return apiError("INTERNAL_ERROR", "the server failed to handle the request; it has been logged under its request id");
}

/**
 * Connect's refusals of what a client sent — as it reads, decompresses and
 * parses a request, before or while the interceptors run — as §6 errors in
 * our words: a parser's own text ("premature EOF", "Unexpected token")
 * stays out, and garbage is the client's INVALID_REQUEST, not our 500.
 * Connect's protocol errors ("protocol error: …", "decompression failed")
 * say what the client did and keep their text.
 */
function connectRefusal(error: ConnectError, input = "this RPC's request"): ConnectError | undefined {
  const violation = (description: string) => ({ violations: [{ field: "", description }] });
  const message = error.rawMessage;
  const cause = error.cause as { name?: unknown; code?: unknown } | undefined;
  switch (error.code) {
    case Code.Internal:
      if (!message.startsWith("parse binary")) return undefined;
      return apiError("INVALID_REQUEST", `the request is not a valid ${input} message (protobuf binary, UTF-8 strings)`, violation(`not a ${input}`));
    case Code.ResourceExhausted: {
      const limit = /readMaxBytes (\d+)/.exec(message)?.[1];
      if (!limit) return undefined;
      return apiError("PAYLOAD_TOO_LARGE", `the request body is larger than ${limit} bytes`, { max_body_bytes: Number(limit) });
    }
    case Code.InvalidArgument:
      if (cause?.code === "ERR_ENCODING_INVALID_ENCODED_DATA") return apiError("INVALID_REQUEST", "the body is not valid UTF-8", violation("not valid UTF-8"));
      if (cause?.name === "SyntaxError" || message.startsWith("cannot decode")) {
        return apiError("INVALID_REQUEST", `the request is not valid JSON for ${input}`, violation(`not a ${input} in JSON`));
      }
      return apiError("INVALID_REQUEST", message, violation(message));
    case Code.Unimplemented:
      if (!message.startsWith("protocol error") && !message.startsWith("unknown compression")) return undefined;
      return apiError("INVALID_REQUEST", message, violation(message));
    default:
      return undefined;
  }
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
