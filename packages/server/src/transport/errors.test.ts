// The contract's error table (plain gRPC numbers) read as Connect's codes,
// and the envelope it gives.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, test } from "vitest";
import { apiError, asApiError, envelope, ERRORS } from "./errors";

describe("ERRORS", () => {
  test("the gRPC numbers are Connect's codes", () => {
    expect(ERRORS.INVALID_REQUEST.grpc).toBe(Code.InvalidArgument);
    expect(ERRORS.UNAUTHORIZED.grpc).toBe(Code.Unauthenticated);
    expect(ERRORS.FORBIDDEN.grpc).toBe(Code.PermissionDenied);
    expect(ERRORS.NOT_FOUND.grpc).toBe(Code.NotFound);
    expect(ERRORS.CONFLICT.grpc).toBe(Code.Aborted);
    expect(ERRORS.FAILOVER_IN_PROGRESS.grpc).toBe(Code.FailedPrecondition);
    expect(ERRORS.RATE_LIMIT_EXCEEDED.grpc).toBe(Code.ResourceExhausted);
    expect(ERRORS.INTERNAL_ERROR.grpc).toBe(Code.Internal);
    expect(ERRORS.SERVICE_UNAVAILABLE.grpc).toBe(Code.Unavailable);
    expect(ERRORS.UNIMPLEMENTED.grpc).toBe(Code.Unimplemented);
  });

  test("an error leaves with its code's status, gRPC code and envelope", () => {
    const error = apiError("FAILOVER_IN_PROGRESS", "a failover of this replication is in progress");
    expect(error.code).toBe(Code.FailedPrecondition);
    const { status, body } = envelope(error, "req-1");
    expect(status).toBe(422);
    expect(body).toMatchObject({ error: { code: "FAILOVER_IN_PROGRESS", request_id: "req-1", details: {} } });
  });

  test("a bare ConnectError takes the first code with its gRPC code, never METHOD_NOT_ALLOWED", () => {
    expect(envelope(asApiError(new ConnectError("no", Code.Unimplemented)), "r").status).toBe(501);
    expect(envelope(asApiError(new ConnectError("no", Code.InvalidArgument)), "r").body).toMatchObject({ error: { code: "INVALID_REQUEST" } });
  });
});
