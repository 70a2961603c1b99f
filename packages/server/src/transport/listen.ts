// The two listeners of spec §1.2: port 8080 speaks HTTP/1.1 and cleartext
// HTTP/2 on one port (Node's http2 server cannot do both, so the first bytes
// of a connection decide: the HTTP/2 preface goes to the h2c server), port
// 50051 speaks h2c for gRPC. Both serve the same application. On 8080 an
// HTTP/1.1 `Upgrade: websocket` request goes to an upgrade hook (the
// WebSocket gateway), which owns the socket from then on.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";

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

/** HTTP/1.1 and h2c on one port; WebSocket upgrades to `upgrade` when given. */
export function listenDual(app: App, host: string, port: number, upgrade?: UpgradeHandler): Promise<Listener> {
  const h1 = http.createServer(app as http.RequestListener);
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
  const h2 = http2.createServer(app as never);
  const server = net.createServer((socket) => {
    socket.once("readable", () => {
      const head: Buffer | null = socket.read(Math.min(PREFACE.length, socket.readableLength)) ?? socket.read();
      if (head) socket.unshift(head);
      const isH2 = head !== null && PREFACE.subarray(0, head.length).equals(head.subarray(0, PREFACE.length));
      (isH2 ? h2 : h1).emit("connection", socket);
    });
  });
  return listen(server, host, port, [h1, h2]);
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

/** h2c only (gRPC clients speak HTTP/2 with prior knowledge). */
export function listenH2c(app: App, host: string, port: number): Promise<Listener> {
  const h2 = http2.createServer(app as never);
  return listen(h2, host, port, []);
}

function listen(server: net.Server, host: string, port: number, inner: (http.Server | http2.Http2Server)[]): Promise<Listener> {
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
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
