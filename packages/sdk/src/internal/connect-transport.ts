// Any unary RPC over a Connect-ES transport (Connect and gRPC-web with
// @connectrpc/connect-web here; gRPC with connect-node), with what the REST
// transport gives every call: the credentials of each attempt, the §6.3
// retries, one Idempotency-Key per logical call that changes something, and
// errors as the same HeliosDBError classes — read from the ApiError detail
// the server attaches to every refusal, so a failure has the same code,
// status, details and request id on every transport.
import type { DescMessage, DescMethodServerStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport as ConnectTransport } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { ApiErrorSchema, ERROR_CODES, isErrorCode } from "@heliosdb/replication-proto";
import { ConnectionError, ConnectionTimeoutError, errorOf, HeliosDBError, messageWithViolations } from "../core/errors";
import { aborted, withRetries, type RetryOptions } from "../core/retry";
import { newIdempotencyKey } from "./rest-fetch";
import { routeOf } from "./rest-transport";
import type { CallOptions, Transport } from "./transport";

export interface ConnectConfig {
  headers: () => Record<string, string> | Promise<Record<string, string>>;
  timeoutMs: number;
  retry?: Omit<RetryOptions, "signal">;
}

/** `streams`: the transport of server streams, when not `transport` (the client's reads its bodies through abortableFetch). */
export function fromConnectTransport(transport: ConnectTransport, config: ConnectConfig, streams: ConnectTransport = transport): Transport {
  return {
    unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, message: MessageShape<I>, options: CallOptions = {}): Promise<MessageShape<O>> {
      const key = changes(method as DescMethodUnary) ? newIdempotencyKey() : undefined;
      const signal = options.signal;
      return withRetries(async () => {
        if (signal?.aborted) throw aborted(signal);
        try {
          const header = { ...(await config.headers()), ...(key ? { "idempotency-key": key } : {}) };
          const response = await transport.unary(method, signal, config.timeoutMs, header, message);
          return response.message;
        } catch (e) {
          if (signal?.aborted) throw aborted(signal);
          throw errorOfConnect(e, config.timeoutMs);
        }
      }, { ...config.retry, signal });
    },
    stream<I extends DescMessage, O extends DescMessage>(method: DescMethodServerStreaming<I, O>, message: MessageShape<I>, signal: AbortSignal): AsyncIterable<MessageShape<O>> {
      return (async function* () {
        try {
          const response = await streams.stream(method, signal, undefined, await config.headers(), createAsyncIterable([message]));
          yield* response.message;
        } catch (e) {
          throw signal.aborted ? aborted(signal) : errorOfConnect(e);
        }
      })();
    },
  };
}

// Whether a call changes something (and so carries an Idempotency-Key): its REST verb is not GET, as for the REST transport.
function changes(method: DescMethodUnary): boolean {
  const route = routeOf(method);
  return route ? route.verb !== "GET" : !/^(Get|List)/.test(method.name);
}

/** The HeliosDBError of a Connect failure: the server's ApiError when it sent one, else what the status code says. */
export function errorOfConnect(e: unknown, timeoutMs?: number): HeliosDBError {
  if (e instanceof HeliosDBError) return e;
  const error = ConnectError.from(e);
  const detail = error.findDetails(ApiErrorSchema)[0];
  if (detail && detail.code) {
    const details = (detail.details ?? {}) as Record<string, unknown>;
    return errorOf({
      code: detail.code,
      message: messageWithViolations(detail.message || error.rawMessage, details),
      status: isErrorCode(detail.code) ? ERROR_CODES[detail.code].http : undefined,
      details,
      requestId: detail.requestId || error.metadata.get("x-request-id") || undefined,
      retryAfter: detail.retryAfterSeconds,
      cause: error,
    });
  }
  // No answer of the server's: the connection failed, or the call ran out of time.
  if (error.code === Code.DeadlineExceeded) return new ConnectionTimeoutError({ code: "TIMEOUT", message: `no answer within ${timeoutMs} ms`, cause: error });
  if (error.code === Code.Unavailable || error.code === Code.Unknown) return new ConnectionError({ code: "CONNECTION_ERROR", message: `the server could not be reached: ${error.rawMessage}`, cause: error });
  const code = Object.entries(ERROR_CODES).find(([, info]) => info.grpc === error.code)?.[0] ?? "INTERNAL_ERROR";
  return errorOf({ code, message: error.rawMessage, requestId: error.metadata.get("x-request-id") ?? undefined, cause: error });
}
