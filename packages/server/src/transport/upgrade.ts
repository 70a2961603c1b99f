// HTTP/1.1 Upgrade requests (the WebSocket API of spec §4) authenticate
// through the same interceptor chain as every RPC: the upgrade becomes a
// request for the stream RPC whose permission it needs, with the upgrade's
// headers and the query's `token=` (browsers cannot set headers on a
// WebSocket) as its bearer token, and the chain runs up to the point where
// the RPC would be called. Request ids, authentication, permissions — and
// whatever interceptor comes later (rate limits) — behave as for a call, and
// a refusal is the §6 envelope the hook writes before closing the socket.
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { create, type DescMethodServerStreaming, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type ContextValues, type Interceptor, type StreamRequest, type StreamResponse } from "@connectrpc/connect";
import { principalKey, type Principal } from "./auth";
import { asApiError, envelope } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import { RATE_LIMIT_HEADERS } from "./rate-limit";

/** An authenticated upgrade. */
export interface UpgradeCaller {
  /** Who is calling; undefined when `method` needs no permission. */
  principal: Principal | undefined;
  requestId: string;
  /** The request's headers as the interceptors left them (with the bearer token, the request id). */
  header: Headers;
}

type Next = (req: StreamRequest) => Promise<StreamResponse>;

/**
 * Authenticates upgrade requests as calls of `method` through `interceptors`
 * (the chain is made once). Resolves to the caller; rejects with the
 * ConnectError carrying the §6 detail, for `refuseUpgrade`.
 */
export function upgradeAuthenticator(interceptors: Interceptor[], method: DescMethodServerStreaming): (req: IncomingMessage) => Promise<UpgradeCaller> {
  // Where the RPC would be called: nothing is, the interceptors only let the call through.
  const through: Next = async (req) => ({
    stream: true,
    service: req.service,
    method: req.method,
    header: new Headers(),
    trailer: new Headers(),
    message: (async function* () {})(),
  });
  const next = interceptors.reduceRight<Next>((n, interceptor) => interceptor(n as never) as Next, through);
  return async (req) => {
    const header = upgradeHeader(req);
    const values = createContextValues();
    await next(new UpgradeRequest(method, req, header, values));
    return { principal: values.get(principalKey), requestId: header.get(REQUEST_ID) ?? requestIdOf(undefined), header };
  };
}

/**
 * Answers an upgrade with the §6 envelope of `error` (its HTTP status) and
 * closes the socket, with the rate-limit headers the error carries. The request id is the chain's when the error came
 * through it, else `requestId` (an authenticated caller's), else the client's.
 */
export function refuseUpgrade(socket: Duplex, error: unknown, req: IncomingMessage, requestId?: string): void {
  const e = asApiError(error);
  requestId = e.metadata.get(REQUEST_ID) ?? requestId ?? requestIdOf(req.headers[REQUEST_ID] as string | undefined);
  const { status, body } = envelope(e, requestId);
  const text = Buffer.from(JSON.stringify(body), "utf8");
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
    "Connection: close",
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${text.length}`,
    `X-Request-Id: ${requestId}`,
    // A 429's Retry-After and X-RateLimit-* (spec §7.1), as every protocol answers them.
    ...RATE_LIMIT_HEADERS.flatMap((name) => {
      const value = e.metadata.get(name);
      return value === null ? [] : [`${name}: ${value}`];
    }),
    "",
    "",
  ].join("\r\n");
  if (!socket.writable) return void socket.destroy();
  // As the ws package: close once the answer is written, whatever the client does.
  socket.once("finish", () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), text]));
}

// The upgrade's headers, with the query's token as the bearer token unless an Authorization header is given.
function upgradeHeader(req: IncomingMessage): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) header.append(name, v);
    else header.set(name, value);
  }
  const token = new URL(req.url ?? "/", "http://localhost").searchParams.get("token");
  if (token && !header.has("authorization")) header.set("authorization", `Bearer ${token}`);
  return header;
}

class UpgradeRequest implements StreamRequest {
  readonly stream = true;
  readonly service: DescService;
  readonly message: AsyncIterable<never>;
  readonly requestMethod: string;
  readonly url: string;
  readonly signal: AbortSignal;

  constructor(
    readonly method: DescMethodServerStreaming,
    req: IncomingMessage,
    readonly header: Headers,
    readonly contextValues: ContextValues,
  ) {
    this.service = method.parent;
    const input = create(method.input);
    this.message = (async function* () {
      yield input as never;
    })();
    this.requestMethod = req.method ?? "GET";
    this.url = `http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
    // Aborted if the client goes away while the interceptors run.
    const controller = new AbortController();
    req.socket.once("close", () => controller.abort(new ConnectError("the client went away", Code.Canceled)));
    this.signal = controller.signal;
  }
}
