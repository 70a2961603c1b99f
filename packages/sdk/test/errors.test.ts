// Every error code of the contract's table has its own class, with the
// code's HTTP status; an unknown code still makes a HeliosDBError.
import { ERROR_CODES, errorCodes } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { errorOf, HeliosDBError, ReplicationLagExceededError, retryAfterSeconds } from "../src/core/index";

test("one class per code of the contract's table, each with the code's HTTP status", () => {
  const classes = new Set<unknown>();
  for (const code of errorCodes) {
    const error = errorOf({ code, message: "m" });
    expect(error, code).toBeInstanceOf(HeliosDBError);
    expect(error.constructor, code).not.toBe(HeliosDBError);
    expect(error.status, code).toBe(ERROR_CODES[code].http);
    expect(error.name, code).toBe(error.constructor.name);
    classes.add(error.constructor);
  }
  expect(classes.size).toBe(errorCodes.length);
  expect(errorOf({ code: "REPLICATION_LAG_EXCEEDED", message: "m", details: { current_lag_seconds: 120 } })).toBeInstanceOf(ReplicationLagExceededError);
  const unknown = errorOf({ code: "SOMETHING_NEW", message: "m", status: 418 });
  expect(unknown.constructor).toBe(HeliosDBError);
  expect(unknown).toMatchObject({ code: "SOMETHING_NEW", status: 418, details: {} });
});

test("Retry-After as seconds or as an HTTP date; nothing for what is neither", () => {
  const now = Date.parse("2025-11-02T10:00:00Z");
  expect(retryAfterSeconds("30", now)).toBe(30);
  expect(retryAfterSeconds("Sun, 02 Nov 2025 10:01:00 GMT", now)).toBe(60);
  expect(retryAfterSeconds("Sun, 02 Nov 2025 09:00:00 GMT", now)).toBe(0);
  expect(retryAfterSeconds("soon", now)).toBeUndefined();
  expect(retryAfterSeconds(null, now)).toBeUndefined();
});
