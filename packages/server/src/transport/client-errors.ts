// Requests Node's HTTP/1.1 parser refuses before there is a request object
// (headers or URL over the limit, an unknown method, conflicting
// Content-Length and Transfer-Encoding, a request that took too long to
// arrive) used to get Node's bare "400 Bad Request" or "431" with an empty
// body. They get the §6 envelope with a request id too, and the connection
// is closed after it: what follows on it cannot be trusted to be a request.
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ConnectError } from "@connectrpc/connect";
import { apiError, envelope } from "./errors";
import { requestIdOf } from "./interceptors";

/** The methods the server implements on some path (the Allow of an unknown method's 405). */
export const HTTP_METHODS = "GET, POST, PATCH, DELETE, OPTIONS";

export interface ClientErrorLimits {
  maxHeaderBytes: number;
  requestTimeoutMs: number;
}

/** A 'clientError' listener for an HTTP/1.1 server. */
export function clientErrorHandler(limits: ClientErrorLimits) {
  return (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Duplex): void => {
    // A connection reset or closed mid-request: nobody to answer.
    if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
    writeEnvelope(socket, errorOf(err, limits), requestIdOf(undefined), err.code === "HPE_INVALID_METHOD" ? { Allow: HTTP_METHODS } : {});
  };
}

function errorOf(err: NodeJS.ErrnoException, limits: ClientErrorLimits): ConnectError {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return apiError("HEADERS_TOO_LARGE", `the request line and headers are larger than ${limits.maxHeaderBytes} bytes`, { max_header_bytes: limits.maxHeaderBytes });
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return apiError("REQUEST_TIMEOUT", `the request did not arrive within ${limits.requestTimeoutMs / 1000} s`, { request_timeout_seconds: limits.requestTimeoutMs / 1000 });
    case "HPE_INVALID_METHOD":
      return apiError("METHOD_NOT_ALLOWED", `unknown HTTP method; this server implements ${HTTP_METHODS}`, { allow: HTTP_METHODS.split(", ") });
    case "HPE_UNEXPECTED_CONTENT_LENGTH":
    case "HPE_INVALID_TRANSFER_ENCODING":
      return invalid("conflicting or invalid Content-Length and Transfer-Encoding");
    case "HPE_INVALID_CONTENT_LENGTH":
      return invalid("an invalid Content-Length");
    case "HPE_INVALID_URL":
    case "HPE_INVALID_PATH":
      return invalid("an invalid request target (URL)");
    case "HPE_INVALID_HEADER_TOKEN":
    case "HPE_INVALID_HEADER_VALUE":
    case "HPE_LF_EXPECTED":
    case "HPE_CR_EXPECTED":
      return invalid("a malformed header");
    default:
      return invalid("malformed HTTP/1.1");
  }
}

function invalid(what: string): ConnectError {
  return apiError("INVALID_REQUEST", `the request is not valid HTTP/1.1: ${what}`, { violations: [{ field: "", description: what }] });
}

/** Writes `error` as a complete HTTP/1.1 answer with the §6 envelope, then closes the socket. */
export function writeEnvelope(socket: Duplex, error: ConnectError, requestId: string, extra: Record<string, string> = {}): void {
  const { status, body } = envelope(error, requestId);
  const text = Buffer.from(JSON.stringify(body), "utf8");
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
    "Connection: close",
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${text.length}`,
    `X-Request-Id: ${requestId}`,
    ...Object.entries(extra).map(([name, value]) => `${name}: ${value}`),
    "",
    "",
  ].join("\r\n");
  socket.once("finish", () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), text]));
}
