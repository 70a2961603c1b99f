// Unary gRPC calls answered straight from HTTP/2: one length-prefixed
// message in, the same implementation through the same interceptors as
// every other protocol (see invoke.ts), one message and a status trailer
// out. Connect's handler ran each call through a pipeline of async
// iterables, two AbortControllers (each aborted, with a DOMException, at the
// end of every call) and header conversions, which cost gRPC several times
// what the call itself does. Everything else — streams, gRPC-web, Connect,
// compressed requests, a timeout header Connect would refuse — is left to
// Connect, which keeps serving it on the same ports.
import { gzipSync } from "node:zlib";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { fromBinary, toBinary, type DescMethod, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Invoker } from "./invoke";

const CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
// As Connect: a request message may be as large as it likes; answers from 1 KiB are compressed when the client accepts gzip.
const COMPRESS_MIN_BYTES = 1024;
const MAX_MESSAGE_BYTES = 0xffffffff;

/** A handler for unary gRPC calls over HTTP/2; false when the request is not one (Connect takes it). */
export function grpcUnaryHandler(services: readonly DescService[], invoker: Invoker) {
  const methods = new Map<string, DescMethodUnary>();
  for (const service of services) {
    for (const method of service.methods as readonly DescMethod[]) {
      if (method.methodKind === "unary" && invoker.has(method)) methods.set(`/${service.typeName}/${method.name}`, method as DescMethodUnary);
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
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => void call(method, req, res, Buffer.concat(chunks), timeout.timeoutMs, invoker));
    return true;
  };
}

async function call(method: DescMethodUnary, req: Http2ServerRequest, res: Http2ServerResponse, body: Buffer, timeoutMs: number | undefined, invoker: Invoker) {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new ConnectError("the client went away", Code.Canceled));
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
  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.charCodeAt(0) === 58 /* ":" pseudo-headers */ || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) header.append(name, v);
    else header.set(name, value);
  }
  let trailer: Headers;
  let frame: Buffer | undefined;
  let responseHeader: Headers | undefined;
  let compressed = false;
  try {
    const message = parse(method, body);
    const response = await Promise.race([
      invoker.unary({ method, message, header, requestMethod: "POST", url: req.url, controller }),
      expired,
    ]);
    const bytes = toBinary(method.output, response.message);
    compressed = bytes.length >= COMPRESS_MIN_BYTES && acceptsGzip(req.headers["grpc-accept-encoding"]);
    frame = envelope(compressed ? gzipSync(bytes) : bytes, compressed);
    responseHeader = response.header;
    trailer = setTrailerStatus(new Headers(response.trailer), undefined);
  } catch (e) {
    // Our errors leave the interceptors as ConnectErrors with the §6 detail; anything else is not for the client's eyes.
    trailer = setTrailerStatus(new Headers(), e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e));
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

function parse(method: DescMethodUnary, body: Buffer) {
  const bytes = single(body);
  try {
    return fromBinary(method.input, bytes);
  } catch (e) {
    throw new ConnectError(`parse binary: ${(e as Error).message}`, Code.Internal);
  }
}

// The one message of a unary request: a 5-byte prefix (flags, length) and its bytes.
function single(body: Buffer): Uint8Array {
  if (body.length < 5) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  if ((body[0]! & 1) === 1) throw new ConnectError("protocol error: received compressed message without grpc-encoding", Code.Internal);
  const length = body.readUInt32BE(1);
  if (length > MAX_MESSAGE_BYTES || 5 + length > body.length) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if (5 + length < body.length) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
  return body.subarray(5);
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
