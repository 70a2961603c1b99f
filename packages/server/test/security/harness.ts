// What the security tests share: one control-plane cluster and a server on
// it (with connections registered to that same cluster when asked: the
// tests need ids that exist, not data), tokens, a captured log, and clients
// that send what fetch would normalize away (raw HTTP/1.1 bytes, raw HTTP/2
// frames). Everything is removed by close(), also when start-up fails.
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { ApiErrorSchema, type ApiError } from "@heliosdb/replication-proto";
import { startCluster, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { startApp, type AppOptions, type RunningApp } from "../../src/app";
import { createPool } from "../../src/store/db";
import { issueToken, loadSigningKey, type TokenRequest } from "../../src/transport/auth";

export const SOURCE = "550e8400-e29b-41d4-a716-446655440001";
export const TARGET = "550e8400-e29b-41d4-a716-446655440002";

export interface Harness {
  cluster: Cluster;
  pool: pg.Pool;
  app: RunningApp;
  dataDir: string;
  /** Every line the server logged. */
  log: string[];
  /** An Admin token (no tenant), or one as asked. */
  token(request?: Partial<TokenRequest>): Promise<string>;
  close(): Promise<void>;
}

export async function startHarness(options: { connections?: boolean; app?: Partial<AppOptions> } = {}): Promise<Harness> {
  const cleanups: (() => unknown)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  };
  try {
    const cluster = await startCluster();
    cleanups.push(() => cluster.stop());
    await cluster.createDatabase("controlplane");
    const pool = createPool(cluster.url("controlplane"));
    cleanups.push(() => pool.end());
    const dataDir = mkdtempSync(join(tmpdir(), "heliosdb-security-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const log: string[] = [];
    // The cluster listens on loopback, which the destination policy denies unless allowed.
    const allowHosts = [`${cluster.host}:${cluster.port}`];
    const app = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 200, allowHosts, log: (m) => log.push(m), ...options.app });
    cleanups.push(() => app.close());
    const token = (request: Partial<TokenRequest> = {}) => issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "security", ...request });
    if (options.connections) {
      const admin = await token();
      for (const connection_id of [SOURCE, TARGET]) {
        const res = await fetch(`${app.urls.rest}/connections`, {
          method: "POST",
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: JSON.stringify({ connection_id, host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, database: "controlplane", sslmode: "disable" }),
        });
        if (res.status !== 201) throw new Error(`register connection: ${res.status} ${await res.text()}`);
      }
    }
    return { cluster, pool, app, dataDir, log, token, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** Sends `request` as it is on a new connection; resolves the first answer (or status 0 when the connection closes without one). */
export function rawHttp(port: number, request: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    let data = Buffer.alloc(0);
    const done = () => {
      socket.destroy();
      resolve(parseAnswer(data));
    };
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      const answer = parseAnswer(data);
      const length = Number(answer.headers["content-length"] ?? NaN);
      if (answer.status && Buffer.byteLength(answer.text) >= length) done();
    });
    socket.on("close", done);
    socket.on("error", done);
  });
}

function parseAnswer(data: Buffer): RawAnswer {
  const text = data.toString("utf8");
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers: {}, text: "", body: undefined };
  const [line, ...fields] = text.slice(0, end).split("\r\n");
  const headers = Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf(":")).toLowerCase(), f.slice(f.indexOf(":") + 1).trim()]));
  let body = text.slice(end + 4);
  if (headers["transfer-encoding"] === "chunked") body = body.replace(/^[0-9a-f]+\r\n/, "").replace(/\r\n0\r\n\r\n$/, "");
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(line!.split(" ")[1]), headers, text: body, body: json };
}

/** One HTTP/1.1 request as text (Connection: close, Content-Length from the body unless given). */
export function http1(method: string, path: string, headers: Record<string, string> = {}, body: Buffer | string = ""): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  const all = { host: "localhost", connection: "close", ...(bytes.length || method === "POST" ? { "content-length": String(bytes.length) } : {}), ...headers };
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), bytes]);
}

export interface H2Answer {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/2 request with exactly these headers and body bytes (raw frames: no client library fixes them up). */
export function rawHttp2(url: string, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request(headers);
    const answer: H2Answer = { headers: {}, trailers: {}, body: Buffer.alloc(0) };
    stream.on("response", (h) => (answer.headers = h));
    stream.on("trailers", (t) => (answer.trailers = t));
    stream.on("data", (d: Buffer) => (answer.body = Buffer.concat([answer.body, d])));
    stream.on("close", () => {
      session.close();
      resolve(answer);
    });
    stream.on("error", () => undefined);
    stream.end(body);
  });
}

/** A gRPC length-prefixed message. */
export function grpcFrame(bytes: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.alloc(5 + bytes.length);
  frame[0] = flags;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

/** The gRPC status code and the §6 ApiError of gRPC trailers (or a trailers-only answer's headers). */
export function grpcStatusOf(fields: http2.IncomingHttpHeaders | Headers): { code: number; apiError: ApiError | undefined } {
  const headers = fields instanceof Headers ? fields : new Headers(Object.entries(fields).filter(([k, v]) => !k.startsWith(":") && typeof v === "string") as [string, string][]);
  const error = findTrailerError(headers);
  return { code: error?.code ?? 0, apiError: error?.findDetails(ApiErrorSchema)[0] };
}
