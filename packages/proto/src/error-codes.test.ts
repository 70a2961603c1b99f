// The error table against spec §6.2: every code the spec defines, at the
// spec's HTTP status, with the gRPC code its meaning calls for.
import { describe, expect, test } from "vitest";
import { ERROR_CODES, errorCodes, errorCodesOf, isErrorCode } from "./error-codes";

// Spec §6.2, as written: code, HTTP status.
const SPEC_6_2: [string, number][] = [
  ["INVALID_REQUEST", 400],
  ["VALIDATION_ERROR", 400],
  ["UNAUTHORIZED", 401],
  ["FORBIDDEN", 403],
  ["NOT_FOUND", 404],
  ["CONFLICT", 409],
  ["REPLICATION_LAG_EXCEEDED", 422],
  ["FAILOVER_IN_PROGRESS", 422],
  ["RATE_LIMIT_EXCEEDED", 429],
  ["INTERNAL_ERROR", 500],
  ["SERVICE_UNAVAILABLE", 503],
];

// google.rpc.Code, by name (the numbers of every gRPC implementation, Connect's Code included).
const GRPC: Record<string, number> = {
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
};

describe("ERROR_CODES", () => {
  test("every code of spec §6.2, at the spec's HTTP status, marked as the spec's", () => {
    for (const [code, status] of SPEC_6_2) {
      expect(isErrorCode(code), code).toBe(true);
      expect(ERROR_CODES[code as keyof typeof ERROR_CODES], code).toMatchObject({ http: status, spec: true });
    }
  });

  test("beyond the spec, only the statuses the transport answers for its own reasons", () => {
    const ours = Object.fromEntries(errorCodes.filter((code) => !ERROR_CODES[code].spec).map((code) => [code, ERROR_CODES[code].http]));
    expect(ours).toEqual({
      UNIMPLEMENTED: 501,
      METHOD_NOT_ALLOWED: 405,
      PAYLOAD_TOO_LARGE: 413,
      UNSUPPORTED_MEDIA_TYPE: 415,
      HEADERS_TOO_LARGE: 431,
      REQUEST_TIMEOUT: 408,
    });
    expect(errorCodes.filter((code) => ERROR_CODES[code].spec)).toEqual(SPEC_6_2.map(([code]) => code));
  });

  test("the gRPC code of each", () => {
    const byName = Object.fromEntries(errorCodes.map((code) => [code, Object.keys(GRPC).find((name) => GRPC[name] === ERROR_CODES[code].grpc)]));
    expect(byName).toEqual({
      INVALID_REQUEST: "INVALID_ARGUMENT",
      VALIDATION_ERROR: "INVALID_ARGUMENT",
      UNAUTHORIZED: "UNAUTHENTICATED",
      FORBIDDEN: "PERMISSION_DENIED",
      NOT_FOUND: "NOT_FOUND",
      CONFLICT: "ABORTED",
      REPLICATION_LAG_EXCEEDED: "FAILED_PRECONDITION",
      FAILOVER_IN_PROGRESS: "FAILED_PRECONDITION",
      RATE_LIMIT_EXCEEDED: "RESOURCE_EXHAUSTED",
      INTERNAL_ERROR: "INTERNAL",
      SERVICE_UNAVAILABLE: "UNAVAILABLE",
      UNIMPLEMENTED: "UNIMPLEMENTED",
      METHOD_NOT_ALLOWED: "UNIMPLEMENTED",
      PAYLOAD_TOO_LARGE: "RESOURCE_EXHAUSTED",
      UNSUPPORTED_MEDIA_TYPE: "INVALID_ARGUMENT",
      HEADERS_TOO_LARGE: "RESOURCE_EXHAUSTED",
      REQUEST_TIMEOUT: "DEADLINE_EXCEEDED",
    });
  });

  test("codes by HTTP status, in the table's order", () => {
    expect(errorCodesOf(400)).toEqual(["INVALID_REQUEST", "VALIDATION_ERROR"]);
    expect(errorCodesOf(422)).toEqual(["REPLICATION_LAG_EXCEEDED", "FAILOVER_IN_PROGRESS"]);
    expect(errorCodesOf(418)).toEqual([]);
  });

  test("isErrorCode takes the table's own keys only", () => {
    expect(isErrorCode("NOT_FOUND")).toBe(true);
    expect(isErrorCode("not_found")).toBe(false);
    expect(isErrorCode("toString")).toBe(false);
  });
});
