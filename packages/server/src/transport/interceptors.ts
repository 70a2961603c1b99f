// What every call passes through, whatever protocol it came by (REST calls
// come through the in-process transport): a request id, and errors turned
// into the spec's ApiError carrying that id.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { ApiErrorSchema } from "@heliosdb/replication-proto";
import { arrivalKey } from "../services/context";
import { apiErrorOf, asApiError } from "./errors";
import { tapStream } from "./invoke-stream";

export const REQUEST_ID = "x-request-id";

/** The caller's request id when it sends a sane one, else a new one. */
export function requestIdOf(header: string | null | undefined): string {
  return header && /^[\w.:-]{1,128}$/.test(header) ? header : `req-${randomUUID()}`;
}

/** Gives every call a request id; an error leaves as the §6 ApiError with it, and a 5xx's cause is logged with it. */
export function requestInterceptor(log: (e: unknown, requestId: string) => void): Interceptor {
  return (next) => async (req) => {
    const given = req.header.get(REQUEST_ID);
    const requestId = requestIdOf(given);
    if (requestId !== given) req.header.set(REQUEST_ID, requestId);
    const fail = (e: unknown) => withRequestId(asApiError(e, (cause) => log(cause, requestId), req.method.input.typeName), requestId);
    try {
      const res = await next(req);
      res.header.set(REQUEST_ID, requestId);
      if (!res.stream) return res;
      return { ...res, message: tapStream(res.message, (m) => m, undefined, fail) };
    } catch (e) {
      throw fail(e);
    }
  };
}

/**
 * Marks each call with the replication cache session's count of round trips
 * as it arrives (services/context.ts `arrivalKey`): a trip sent after the
 * mark — the call's own rate-limit decision, on that session — is then all a
 * read from the cache waits for.
 */
export function arrivalInterceptor(session: { ticket(): number }): Interceptor {
  return (next) => (req) => {
    req.contextValues.set(arrivalKey, session.ticket());
    return next(req);
  };
}

/** The error with `requestId` in its ApiError and its metadata (the X-Request-Id header or trailer). */
export function withRequestId(error: ConnectError, requestId: string): ConnectError {
  const detail = create(ApiErrorSchema, { ...apiErrorOf(error)!, requestId });
  const out = new ConnectError(error.rawMessage, error.code, error.metadata, [{ desc: ApiErrorSchema, value: detail }]);
  out.metadata.set(REQUEST_ID, requestId);
  return out;
}
