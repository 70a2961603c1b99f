// The SDK's errors: one HeliosDBError base, one subclass per error code of
// spec §6.2 (and of the API's own codes beside them, from the contract's
// table in @heliosdb/replication-proto), and the failures that never reached
// an answer. Every transport throws the same class, with the same fields, for
// the same failure.
import { ERROR_CODES, errorCodesOf, isErrorCode, type ErrorCode } from "@heliosdb/replication-proto";

export interface HeliosDBErrorFields {
  /** A §6.2 code (VALIDATION_ERROR…), or CONNECTION_ERROR / TIMEOUT / ABORTED for a call without an answer. */
  code: string;
  message: string;
  /** The HTTP status of the §6.1 envelope (the code's status on the gRPC transports); undefined without an answer. */
  status?: number | undefined;
  details?: Record<string, unknown> | undefined;
  /** The server's request id, for support and the audit log. */
  requestId?: string | undefined;
  /** Seconds the server asked to wait before trying again (Retry-After), when it said. */
  retryAfter?: number | undefined;
  cause?: unknown;
}

export class HeliosDBError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  readonly details: Record<string, unknown>;
  readonly requestId: string | undefined;
  readonly retryAfter: number | undefined;

  constructor(fields: HeliosDBErrorFields) {
    super(fields.message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    this.code = fields.code;
    this.status = fields.status;
    this.details = fields.details ?? {};
    this.requestId = fields.requestId;
    this.retryAfter = fields.retryAfter;
  }
}

// Spec §6.2.
export class InvalidRequestError extends HeliosDBError {}
export class ValidationError extends HeliosDBError {}
export class UnauthorizedError extends HeliosDBError {}
export class ForbiddenError extends HeliosDBError {}
export class NotFoundError extends HeliosDBError {}
export class ConflictError extends HeliosDBError {}
export class ReplicationLagExceededError extends HeliosDBError {}
export class FailoverInProgressError extends HeliosDBError {}
export class RateLimitError extends HeliosDBError {}
export class InternalServerError extends HeliosDBError {}
export class ServiceUnavailableError extends HeliosDBError {}
// The API's own codes (not in §6.2).
export class UnimplementedError extends HeliosDBError {}
export class MethodNotAllowedError extends HeliosDBError {}
export class PayloadTooLargeError extends HeliosDBError {}
export class UnsupportedMediaTypeError extends HeliosDBError {}
export class HeadersTooLargeError extends HeliosDBError {}
export class RequestTimeoutError extends HeliosDBError {}

/** No answer: the server could not be reached, or the connection broke (retried). */
export class ConnectionError extends HeliosDBError {}
/** No answer within the call's timeout (retried while attempts and the deadline allow). */
export class ConnectionTimeoutError extends ConnectionError {}
/** The caller's AbortSignal ended the call (never retried). */
export class AbortedError extends HeliosDBError {}

/** The class of each code; the compiler holds it to the contract's table (a code added there must be added here). */
const CLASSES = {
  INVALID_REQUEST: InvalidRequestError,
  VALIDATION_ERROR: ValidationError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: ForbiddenError,
  NOT_FOUND: NotFoundError,
  CONFLICT: ConflictError,
  REPLICATION_LAG_EXCEEDED: ReplicationLagExceededError,
  FAILOVER_IN_PROGRESS: FailoverInProgressError,
  RATE_LIMIT_EXCEEDED: RateLimitError,
  INTERNAL_ERROR: InternalServerError,
  SERVICE_UNAVAILABLE: ServiceUnavailableError,
  UNIMPLEMENTED: UnimplementedError,
  METHOD_NOT_ALLOWED: MethodNotAllowedError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  UNSUPPORTED_MEDIA_TYPE: UnsupportedMediaTypeError,
  HEADERS_TOO_LARGE: HeadersTooLargeError,
  REQUEST_TIMEOUT: RequestTimeoutError,
} as const satisfies Record<ErrorCode, typeof HeliosDBError>;

/** The error of a code: its class, and the code's HTTP status when none is given. */
export function errorOf(fields: HeliosDBErrorFields): HeliosDBError {
  if (!isErrorCode(fields.code)) return new HeliosDBError(fields);
  return new CLASSES[fields.code]({ ...fields, status: fields.status ?? ERROR_CODES[fields.code].http });
}

/**
 * The server's message with the fields its details name (`details.violations`,
 * as §6 writes a validation error), so that the message alone says what to fix.
 */
export function messageWithViolations(message: string, details: Record<string, unknown>): string {
  const violations = Array.isArray(details.violations) ? (details.violations as { field?: unknown; description?: unknown }[]) : [];
  const said = violations.filter((v) => typeof v?.description === "string").map((v) => (v.field ? `${String(v.field)}: ${String(v.description)}` : String(v.description)));
  return said.length > 0 ? `${message} (${said.join("; ")})` : message;
}

/**
 * The error of an HTTP answer that is not a success: the §6.1 envelope's
 * code, message, details and request id; a body that is no envelope (a
 * proxy's page) gets the code its status stands for.
 */
export function errorFromResponse(status: number, body: unknown, headers: { get(name: string): string | null }, now = Date.now()): HeliosDBError {
  const retryAfter = retryAfterSeconds(headers.get("retry-after"), now);
  const envelope = (body as { error?: Record<string, unknown> } | null)?.error;
  if (envelope && typeof envelope === "object" && typeof envelope.code === "string") {
    const details = isObject(envelope.details) ? envelope.details : {};
    return errorOf({
      code: envelope.code,
      message: messageWithViolations(typeof envelope.message === "string" ? envelope.message : envelope.code, details),
      status,
      details,
      requestId: typeof envelope.request_id === "string" ? envelope.request_id : (headers.get("x-request-id") ?? undefined),
      retryAfter,
    });
  }
  const code = errorCodesOf(status)[0] ?? (status >= 500 ? "INTERNAL_ERROR" : "INVALID_REQUEST");
  return errorOf({ code, message: `HTTP ${status}`, status, requestId: headers.get("x-request-id") ?? undefined, retryAfter });
}

/** Retry-After in seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
