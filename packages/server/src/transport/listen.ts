// The two listeners of spec §1.2: port 8080 speaks HTTP/1.1 and cleartext
// HTTP/2 on one port (Node's http2 server cannot do both, so the first bytes
// of a connection decide: the HTTP/2 preface goes to the h2c server), port
// 50051 speaks h2c for gRPC. Both serve the same application. On 8080 an
// HTTP/1.1 `Upgrade: websocket` request goes to an upgrade hook (the
// WebSocket gateway), which owns the socket from then on. With a TLS
// certificate, 8080 speaks HTTPS and h2 (ALPN decides) and 50051 h2 over TLS.
//
// No connection may hold the server's attention for free: headers must
// arrive within a bound (a client sending them byte by byte is cut off), a
// whole request within another, an idle connection is closed, headers and
// URL are bounded in size, and what the HTTP/1.1 parser refuses is answered
// with the §6 envelope (client-errors.ts).
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { clientErrorHandler } from "./client-errors";
import { apiError, envelope } from "./errors";
import { requestIdOf } from "./interceptors";

/** Limits and TLS of the listeners; every field has a default (DEFAULT_LISTEN). */
export interface ListenOptions {
  /** HTTPS and h2 (ALPN) instead of cleartext: PEM certificate chain and private key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** How long a request's headers may take to arrive (ms); then the connection is cut off. */
  headersTimeoutMs: number;
  /** How long a whole request, headers and body, may take to arrive (ms): 408 REQUEST_TIMEOUT. */
  requestTimeoutMs: number;
  /** How long a connection without a request in flight stays open (ms). */
  idleTimeoutMs: number;
  /** The largest request line and headers of an HTTP/1.1 request, and header list of an HTTP/2 one (bytes). */
  maxHeaderBytes: number;
}

export const DEFAULT_LISTEN: ListenOptions = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxHeaderBytes: 16 * 1024,
};

export type App = (req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

export interface Listener {
  port: number;
  close(): Promise<void>;
}

/**
 * Answers an HTTP/1.1 `Upgrade: websocket` request on its socket (`head`:
 * the bytes read past the request's headers). False declines it: it is then
 * served by the application as a plain request, as if it had asked for no
 * upgrade.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean | void;

/** HTTP/1.1 and h2c (or, with TLS, HTTPS and h2) on one port; WebSocket upgrades to `upgrade` when given. */
export function listenDual(app: App, host: string, port: number, upgrade?: UpgradeHandler, options: Partial<ListenOptions> = {}): Promise<Listener> {
  const limits = { ...DEFAULT_LISTEN, ...options };
  const h1 = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      // How often Node checks those two timeouts (its default, 30 s, would let a slow client hold a connection that long).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs / 2),
    },
    app as http.RequestListener,
  );
  h1.on("clientError", clientErrorHandler(limits));
  // Node starts enforcing headersTimeout and requestTimeout when a server starts listening; this one never listens
  // itself (its connections come from the listener below), so it is told (as Node's own tests do). close() stops it.
  h1.emit("listening");
  // With an 'upgrade' listener Node hands it every Upgrade request (h2c too: curl --http2 asks for one).
  if (upgrade) {
    h1.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        if (isWebSocket(req) && upgrade(req, socket, head) !== false) return;
      } catch {
        return void socket.destroy();
      }
      servePlain(h1, req, socket as net.Socket, head);
    });
  }
  const h2 = http2Server(app, limits);
  if (limits.tls) {
    // ALPN decides: h2, else HTTP/1.1 (a client that offers nothing speaks HTTP/1.1).
    const server = tls.createServer({ ...limits.tls, ALPNProtocols: ["h2", "http/1.1"], handshakeTimeout: limits.headersTimeoutMs }, (socket) => {
      (socket.alpnProtocol === "h2" ? h2 : h1).emit("connection", socket);
    });
    return listen(server, host, port, [h1, h2], () => h1.close(() => undefined));
  }
  const server = net.createServer((socket) => {
    // A client that connects and sends nothing is not handed to either server: it is cut off here.
    socket.setTimeout(limits.headersTimeoutMs, () => socket.destroy());
    socket.once("readable", () => {
      socket.setTimeout(0);
      const head: Buffer | null = socket.read(Math.min(PREFACE.length, socket.readableLength)) ?? socket.read();
      if (head) socket.unshift(head);
      const isH2 = head !== null && PREFACE.subarray(0, head.length).equals(head.subarray(0, PREFACE.length));
      (isH2 ? h2 : h1).emit("connection", socket);
    });
  });
  return listen(server, host, port, [h1, h2], () => h1.close(() => undefined));
}

function isWebSocket(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? "").split(",").some((p) => p.trim().toLowerCase() === "websocket");
}

// Node has taken the socket from its HTTP parser for the upgrade: give the
// request back to a fresh one without the upgrade (its headers as sent,
// then what was read past them), on the same connection, which stays
// keep-alive as it was.
function servePlain(h1: http.Server, req: IncomingMessage, socket: net.Socket, head: Buffer): void {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    let value = req.rawHeaders[i + 1]!;
    if (lower === "upgrade" || lower === "http2-settings") continue;
    if (lower === "connection") {
      value = value.split(",").map((t) => t.trim()).filter((t) => !/^(upgrade|http2-settings)$/i.test(t)).join(", ");
      if (!value) continue;
    }
    lines.push(`${name}: ${value}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), head]));
  h1.emit("connection", socket);
}

/** h2c only (gRPC clients speak HTTP/2 with prior knowledge), or h2 over TLS with a certificate. */
export function listenH2c(app: App, host: string, port: number, options: Partial<ListenOptions> = {}): Promise<Listener> {
  const limits = { ...DEFAULT_LISTEN, ...options };
  const h2 = http2Server(app, limits);
  if (limits.tls) {
    const server = tls.createServer({ ...limits.tls, ALPNProtocols: ["h2"], handshakeTimeout: limits.headersTimeoutMs }, (socket) => h2.emit("connection", socket));
    return listen(server, host, port, [h2]);
  }
  return listen(h2, host, port, []);
}

/**
 * An HTTP/2 server with the limits: a header list over maxHeaderBytes is
 * refused by HTTP/2 itself; a request whose body has not arrived within
 * requestTimeoutMs, and that is not answered yet, gets 408 REQUEST_TIMEOUT
 * (its stream then closes); a session without a stream for idleTimeoutMs is
 * closed.
 */
function http2Server(app: App, limits: ListenOptions): http2.Http2Server {
  const h2 = http2.createServer({ maxSendHeaderBlockLength: limits.maxHeaderBytes * 4, settings: { maxHeaderListSize: limits.maxHeaderBytes } }, (req, res) => {
    // A request with a body (not ended with its headers) must finish arriving in time.
    if (!req.stream.endAfterHeaders) {
      // A call answering already (a bidi stream) is the handler's to end.
      const timer = setTimeout(() => {
        if (req.complete || res.stream.destroyed || res.headersSent) return;
        // The rest of the body is not waited for: the stream is reset once the answer is out (the
        // stream's own 'finish': the compatibility response's comes only when the stream closes).
        res.stream.once("finish", () => res.stream.destroyed || res.stream.close(http2.constants.NGHTTP2_CANCEL));
        timedOut(res, limits.requestTimeoutMs);
      }, limits.requestTimeoutMs);
      req.once("end", () => clearTimeout(timer));
      res.once("close", () => clearTimeout(timer));
    }
    app(req, res);
  });
  h2.on("session", (session: http2.ServerHttp2Session) => {
    let open = 0;
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      open++;
      stream.once("close", () => open--);
    });
    session.setTimeout(limits.idleTimeoutMs, () => {
      if (open === 0) session.close();
    });
  });
  return h2;
}

function timedOut(res: http2.Http2ServerResponse, ms: number): void {
  const requestId = requestIdOf(undefined);
  const { status, body } = envelope(apiError("REQUEST_TIMEOUT", `the request did not arrive within ${ms / 1000} s`, { request_timeout_seconds: ms / 1000 }), requestId);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "x-request-id": requestId });
  res.end(JSON.stringify(body));
}

function listen(server: net.Server, host: string, port: number, inner: (http.Server | http2.Http2Server)[], closed = () => undefined as unknown): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  for (const s of inner) s.on("connection", (socket: net.Socket) => sockets.add(socket));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            closed();
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
