// The two listeners of spec §1.2: port 8080 speaks HTTP/1.1 and cleartext
// HTTP/2 on one port (Node's http2 server cannot do both, so the first bytes
// of a connection decide: the HTTP/2 preface goes to the h2c server), port
// 50051 speaks h2c for gRPC. Both serve the same application.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2 from "node:http2";
import net from "node:net";

export type App = (req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

export interface Listener {
  port: number;
  close(): Promise<void>;
}

/** HTTP/1.1 and h2c on one port. */
export function listenDual(app: App, host: string, port: number): Promise<Listener> {
  const h1 = http.createServer(app as http.RequestListener);
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
