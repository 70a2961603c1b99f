// gRPC calls answered straight from HTTP/2, unary and server-streaming alike:
// one length-prefixed message in, the same implementation through the same
// interceptors as every other protocol (see invoke.ts), length-prefixed
// messages and a status trailer out; an error, before the first message or
// in the middle of a stream, is that trailer, with the §6 ApiError in
// grpc-status-details-bin. Connect's handler ran each call through a
// pipeline of async iterables, two AbortControllers (each aborted, with a
// DOMException, at the end of every call) and header conversions, which cost
// gRPC several times what the call itself does. Everything else — Connect
// and gRPC-web (streams too), client and bidi streams, compressed requests,
// a timeout header Connect would refuse — is left to Connect's adapter,
// which keeps serving it on the same ports with the same interceptor array
// (app.ts hands both the one list), so authentication, request ids and
// error mapping are the same whichever path a call takes.
import { gzipSync } from "node:zlib";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import {
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { encodedOnce } from "./encoded";
import { apiError, asApiError } from "./errors";
import { leaveUnread, openGuard, readLimited, type Guard } from "./guard";
import { REQUEST_ID, requestIdOf, withRequestId } from "./interceptors";
import type { Invoker } from "./invoke";

const CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
// Answers from 1 KiB are compressed when the client accepts gzip (as Connect); requests are bounded by the guard.
const COMPRESS_MIN_BYTES = 1024;

/**
 * A handler for unary and server-streaming gRPC calls over HTTP/2; false when
 * the request is not one (Connect takes it). The guard admits the call before
 * its body is read, and bounds the body.
 */
export function grpcHandler(services: readonly DescService[], invoker: Invoker, guard: Guard = openGuard()) {
  const methods = new Map<string, DescMethodUnary | DescMethodServerStreaming>();
  for (const service of services) {
    for (const method of service.methods as readonly DescMethod[]) {
      if ((method.methodKind === "unary" || method.methodKind === "server_streaming") && invoker.has(method)) {
        methods.set(`/${service.typeName}/${method.name}`, method as DescMethodUnary | DescMethodServerStreaming);
      }
    }
  }
  return (req: Http2ServerRequest, res: Http2ServerResponse): boolean => {
    const method = methods.get(req.url);
    const headers = req.headers;
    if (!method || req.method !== "POST" || !CONTENT_TYPES.has(headers["content-type"] ?? "")) return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const timeout = parseTimeout((headers["grpc-timeout"] as string | undefined) ?? null, Number.MAX_SAFE_INTEGER);
    if (timeout.error) return false;
    const header = requestHeader(req);
    const requestId = requestIdOf(header.get(REQUEST_ID));
    header.set(REQUEST_ID, requestId);
    // Errors before the interceptors (credentials, size, framing, parsing) leave as theirs do: the §6 detail with the request id.
    const refuse = (e: unknown) => {
      leaveUnread(req, res);
      answerError(res, withRequestId(asApiError(e, (cause) => guard.log(cause, requestId)), requestId));
    };
    const received = guard
      .admit(`${method.parent.name}.${method.name}`, header)
      .then(() => readLimited(req, guard.maxBodyBytes));
    received.then((body) => {
      let message: MessageShape<DescMessage>;
      try {
        message = parse(method, body);
      } catch (e) {
        return refuse(e);
      }
      if (method.methodKind === "unary") void call(method, req, res, message, header, timeout.timeoutMs, invoker);
      else void stream(method, req, res, message, header, timeout.timeoutMs, invoker);
    }, refuse);
    return true;
  };
}

// An answer without messages: headers, then the gRPC status (and the §6 detail) in the trailers.
function answerError(res: Http2ServerResponse, error: ConnectError): void {
  if (res.closed || res.headersSent) return;
  const trailers: Record<string, string> = {};
  setTrailerStatus(new Headers(), error).forEach((value, name) => void (trailers[name] = value));
  res.writeHead(200, { "content-type": "application/grpc+proto" });
  res.addTrailers(trailers);
  res.end();
}

async function call(
  method: DescMethodUnary,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  message: MessageShape<DescMessage>,
  header: Headers,
  timeoutMs: number | undefined,
  invoker: Invoker,
) {
  const controller = new AbortController();
  // Not writableFinished: HTTP/2's compatibility response says true at any close, a reset by the client too.
  res.once("close", () => {
    if (!res.writableEnded) controller.abort(new ConnectError("the client went away", Code.Canceled));
  });
  const expired = new Promise<never>((_, reject) => {
    if (timeoutMs === undefined) return;
    const timer = setTimeout(() => {
      const e = new ConnectError("the operation timed out", Code.DeadlineExceeded);
      controller.abort(e);
      reject(e);
    }, timeoutMs);
    res.once("close", () => clearTimeout(timer));
  });
  expired.catch(() => undefined);
  let trailer: Headers;
  let frame: Buffer | undefined;
  let responseHeader: Headers | undefined;
  let compressed = false;
  try {
    const response = await Promise.race([
      invoker.unary({ method, message, header, requestMethod: "POST", url: req.url, controller }),
      expired,
    ]);
    const bytes = encoded(method, response.message);
    compressed = bytes.length >= COMPRESS_MIN_BYTES && acceptsGzip(req.headers["grpc-accept-encoding"]);
    frame = envelope(compressed ? gzipSync(bytes) : bytes, compressed);
    responseHeader = response.header;
    trailer = setTrailerStatus(new Headers(response.trailer), undefined);
  } catch (e) {
    // Errors leave the interceptors as ConnectErrors with the §6 detail; a deadline passed while they ran is one too.
    trailer = setTrailerStatus(new Headers(), withRequestId(asApiError(e), header.get(REQUEST_ID)!));
  }
  if (res.closed || res.headersSent) return;
  const out: Record<string, string> = { "content-type": "application/grpc+proto" };
  responseHeader?.forEach((value, name) => void (out[name] = value));
  if (compressed) out["grpc-encoding"] = "gzip";
  res.writeHead(200, out);
  const trailers: Record<string, string> = {};
  trailer.forEach((value, name) => void (trailers[name] = value));
  res.addTrailers(trailers);
  if (frame) res.end(frame);
  else res.end();
}

async function stream(
  method: DescMethodServerStreaming,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  message: MessageShape<DescMessage>,
  header: Headers,
  timeoutMs: number | undefined,
  invoker: Invoker,
) {
  // The one switch that ends the call early (see invoke-stream.ts): the handler's signal fires and the pending read fails with the reason.
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableEnded) controller.abort(new ConnectError("the client went away", Code.Canceled));
  });
  if (timeoutMs !== undefined) {
    const timer = setTimeout(() => controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeoutMs);
    res.once("close", () => clearTimeout(timer));
  }
  // Each message from 1 KiB is compressed when the client accepts gzip; the header says so once, the flag of each message whether it is.
  const gzip = acceptsGzip(req.headers["grpc-accept-encoding"]);
  let response: StreamResponse | undefined;
  let error: ConnectError | undefined;
  try {
    response = await invoker.stream({ method, message, header, requestMethod: "POST", url: req.url, controller });
    for await (const out of response.message) {
      // Headers wait for the first message, as with Connect: until then the handler may still add to them.
      if (!res.headersSent) writeHead(res, response.header, gzip);
      const bytes = toBinary(method.output, out);
      const compressed = gzip && bytes.length >= COMPRESS_MIN_BYTES;
      if (!res.write(envelope(compressed ? gzipSync(bytes) : bytes, compressed))) await drained(res, controller.signal);
    }
  } catch (e) {
    error = withRequestId(asApiError(e), header.get(REQUEST_ID)!);
  }
  if (res.stream.destroyed || res.writableEnded) return;
  if (!res.headersSent) writeHead(res, response?.header, false);
  const trailers: Record<string, string> = {};
  setTrailerStatus(new Headers(response?.trailer), error).forEach((value, name) => void (trailers[name] = value));
  res.addTrailers(trailers);
  res.end();
}

function writeHead(res: Http2ServerResponse, header: Headers | undefined, gzip: boolean): void {
  const out: Record<string, string> = { "content-type": "application/grpc+proto" };
  header?.forEach((value, name) => void (out[name] = value));
  if (gzip) out["grpc-encoding"] = "gzip";
  res.writeHead(200, out);
}

// Until the client has read what was written, or is gone, or the call is over.
function drained(res: Http2ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || res.stream.destroyed) return resolve();
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

// A parser's words about the bytes it refused are its own: the client learns which message did not parse.
function parse(method: DescMethodUnary | DescMethodServerStreaming, body: Buffer) {
  const bytes = single(body, method.methodKind === "unary" ? "unary" : "server-streaming");
  try {
    return fromBinary(method.input, bytes);
  } catch {
    throw apiError("INVALID_REQUEST", `the request is not a valid ${method.input.typeName} message (protobuf binary, UTF-8 strings)`, {
      violations: [{ field: "", description: `not a ${method.input.typeName}` }],
    });
  }
}

// The one message of a unary or server-streaming request: a 5-byte prefix (flags, length) and its bytes.
function single(body: Buffer, kind: string): Uint8Array {
  const framing = (description: string) => apiError("INVALID_REQUEST", `protocol error: ${description}`, { violations: [{ field: "", description }] });
  if (body.length < 5) throw framing(`missing input message for ${kind} method`);
  if ((body[0]! & 1) === 1) throw framing("received compressed message without grpc-encoding");
  const length = body.readUInt32BE(1);
  if (5 + length > body.length) throw framing("incomplete envelope");
  if (5 + length < body.length) throw framing(`received extra input message for ${kind} method`);
  return body.subarray(5);
}

/** The call's request headers, without HTTP/2's pseudo-headers. */
function requestHeader(req: Http2ServerRequest): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.charCodeAt(0) === 58 /* ":" pseudo-headers */ || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) header.append(name, v);
    else header.set(name, value);
  }
  return header;
}

// Each method's protobuf binary of its response; a message answered to many calls (frozen) is encoded once.
const binaries = new Map<DescMethod, (message: MessageShape<DescMessage>) => Uint8Array>();
function encoded(method: DescMethodUnary, message: MessageShape<DescMessage>): Uint8Array {
  let encode = binaries.get(method);
  if (!encode) binaries.set(method, (encode = encodedOnce((m: MessageShape<DescMessage>) => toBinary(method.output, m))));
  return encode(message);
}

function envelope(bytes: Uint8Array, compressed: boolean): Buffer {
  const frame = Buffer.allocUnsafe(5 + bytes.length);
  frame[0] = compressed ? 1 : 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(",") : header;
  return value !== undefined && value.split(",").some((e) => e.trim() === "gzip");
}
