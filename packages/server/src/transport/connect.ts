// Connect's router served from Node: Connect and gRPC-web (streams too),
// client and bidi streams, compressed gRPC requests, reflection and
// grpc.health.v1, with the interceptor array every other path uses. In place
// of connectNodeAdapter, so that what happens before Connect runs the
// interceptors is ours too:
// - the guard admits the call before its body is read (a body refused this
//   way is never read: Connect gets one that fails at once, with the 401);
// - the body is bounded as a whole (Connect's readMaxBytes, the same bound,
//   also caps each decompressed message);
// - Connect's own refusals of a request (a body that does not parse, a bad
//   envelope, a content type it does not speak) leave with the §6 detail and
//   the request id, in the protocol's own form (connect-errors.ts).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Readable } from "node:stream";
import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ConnectRouterOptions, type Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { apiErrorsIn } from "./connect-errors";
import { apiError, envelope } from "./errors";
import { checkDeclaredLength, leaveUnread, tooLarge, type Guard } from "./guard";
import { REQUEST_ID, requestIdOf, withRequestId } from "./interceptors";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface ConnectHandlerOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  guard: Guard;
}

/** A handler for every RPC path of the router; a path that is none gets NOT_FOUND (UNIMPLEMENTED over gRPC and gRPC-web). */
export function connectHandler(options: ConnectHandlerOptions): (req: Request, res: Response) => void {
  const { guard } = options;
  const router = createConnectRouter({
    interceptors: options.interceptors,
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: guard.maxBodyBytes,
    // JSON that is not UTF-8 is refused, not read with U+FFFD in place of what it held (Connect's JSON
    // serialization takes a textDecoder, which its option type does not declare).
    jsonOptions: { textDecoder: new TextDecoder("utf-8", { fatal: true }) } as ConnectRouterOptions["jsonOptions"],
  });
  options.routes(router);
  const paths = new Map<string, UniversalHandler>(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = paths.get((req.url ?? "").split("?", 1)[0]!);
    const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
    if (!handler) return notFound(req, res, requestId);
    serve(handler, req, res, requestId, guard).catch((e: unknown) => {
      // The answer could not be written (the client went away mid-answer): nothing is left to tell it.
      if (ConnectError.from(e).code !== Code.Aborted && ConnectError.from(e).code !== Code.Canceled) guard.log(e, requestId);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  };
}

async function serve(handler: UniversalHandler, req: Request, res: Response, requestId: string, guard: Guard): Promise<void> {
  const uReq = universalRequestFromNodeRequest(req as never, res as never, undefined, undefined);
  uReq.header.set(REQUEST_ID, requestId);
  let refusal: unknown;
  try {
    await guard.admit(`${handler.service.name}.${handler.method.name}`, uReq.header);
    checkDeclaredLength(req.headers["content-length"], guard.maxBodyBytes);
  } catch (e) {
    refusal = e;
  }
  if (refusal) {
    // Connect reads the body first; this one fails before a byte of the request is read.
    uReq.header.delete("content-length");
    uReq.body = failing(withRequestId(refusal as ConnectError, requestId));
    leaveUnread(req, res);
  } else {
    uReq.body = bodyOf(req, guard.maxBodyBytes, () => leaveUnread(req, res));
  }
  const uRes = await handler(uReq);
  await universalResponseToNodeResponse(apiErrorsIn(uRes, { req, requestId, method: handler.method, log: guard.log }), res as never);
}

// eslint-disable-next-line require-yield
async function* failing(error: ConnectError): AsyncGenerator<Uint8Array> {
  throw error;
}

/**
 * The request body as Connect reads it, chunk by chunk (a bidi stream's
 * messages arrive while answers go out), refused past `maxBytes` in all. Not
 * `for await (… of req)`: leaving that loop destroys the request, and with an
 * HTTP/1.1 request the socket the answer has to go out on.
 */
async function* bodyOf(req: Readable, maxBytes: number, onRefused: () => void): AsyncGenerator<Uint8Array> {
  let size = 0;
  for (;;) {
    const chunk = req.read() as Buffer | null;
    if (chunk !== null) {
      size += chunk.length;
      if (size > maxBytes) {
        onRefused();
        throw tooLarge(maxBytes);
      }
      yield chunk;
      continue;
    }
    if (req.readableEnded || req.destroyed) return;
    await readable(req);
  }
}

function readable(req: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: unknown) => {
      req.off("readable", ok).off("end", ok).off("close", ok).off("error", done);
      if (error) reject(error);
      else resolve();
    };
    const ok = () => done();
    req.once("readable", ok).once("end", ok).once("close", ok).once("error", done);
  });
}

// No RPC has this path: UNIMPLEMENTED in the gRPC form for gRPC and gRPC-web clients (whose libraries read no HTTP 404), else the §6 envelope.
function notFound(req: Request, res: Response, requestId: string): void {
  const path = req.url ?? "/";
  const type = String(req.headers["content-type"] ?? "");
  if (/^application\/grpc/i.test(type)) {
    const error = withRequestId(apiError("UNIMPLEMENTED", `no such RPC: ${path.split("?", 1)[0]}`, { path }), requestId);
    const status: Record<string, string> = {};
    setTrailerStatus(new Headers(), error).forEach((value, name) => void (status[name] = value));
    leaveUnread(req, res);
    // gRPC-web reads the status from the headers (a browser sees no trailers), gRPC from the trailers.
    const web = /^application\/grpc-web/i.test(type);
    res.writeHead(200, { "content-type": type.split(";", 1)[0]!, ...(web ? status : {}) });
    if (!web && "addTrailers" in res) res.addTrailers(status);
    return void res.end();
  }
  const { status, body } = envelope(apiError("NOT_FOUND", `no such endpoint: ${path}`, { path }), requestId);
  leaveUnread(req, res);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "X-Request-Id": requestId });
  res.end(JSON.stringify(body));
}
