// What every protocol checks before it reads a request's body: who is
// calling (an unauthenticated client could otherwise make the server read
// and buffer a body as large as it likes before the 401), and how much it
// may send. The REST transcoder, the gRPC handler and the Connect adapter
// each hold the same Guard, and the credentials are judged by the auth
// interceptor's own function (auth.ts `authenticator`): one place decides.
import type { IncomingMessage, ServerResponse } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import type { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { needsCredentials, type Authenticate } from "./auth";
import { apiError } from "./errors";

/** The default largest request body, in bytes (--max-body-bytes). */
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

export interface Guard {
  /**
   * Throws the §6 UNAUTHORIZED error when `rpc` ("ReplicationService.GetReplication")
   * needs credentials and `header` carries no valid ones; public RPCs pass.
   */
  admit(rpc: string, header: Headers): Promise<void>;
  /** The largest request body (or gRPC/Connect message stream) accepted, in bytes. */
  maxBodyBytes: number;
  /** Logs the cause of a 5xx answer with its request id. */
  log(cause: unknown, requestId: string): void;
}

export interface GuardOptions {
  authenticate: Authenticate;
  maxBodyBytes?: number;
  log: (cause: unknown, requestId: string) => void;
}

export function createGuard(options: GuardOptions): Guard {
  return {
    async admit(rpc, header) {
      if (needsCredentials(rpc)) await options.authenticate(header, rpc);
    },
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    log: options.log,
  };
}

/** A guard that admits every call (the interceptors still authenticate it): for handlers tested alone. */
export function openGuard(): Guard {
  return { admit: async () => undefined, maxBodyBytes: DEFAULT_MAX_BODY_BYTES, log: () => undefined };
}

/** The §6 error of a body over the limit. */
export function tooLarge(maxBytes: number): ConnectError {
  return apiError("PAYLOAD_TOO_LARGE", `the request body is larger than ${maxBytes} bytes`, { max_body_bytes: maxBytes });
}

/** Refuses a declared Content-Length over the limit before anything is read. */
export function checkDeclaredLength(contentLength: string | string[] | undefined, maxBytes: number): void {
  if (typeof contentLength === "string" && /^\d+$/.test(contentLength) && Number(contentLength) > maxBytes) throw tooLarge(maxBytes);
}

type Body = Readable & { headers: Record<string, string | string[] | undefined> };

/**
 * A request's body, refused (PAYLOAD_TOO_LARGE) as soon as it declares or
 * reaches more than `maxBytes`. The rest is then left unread, and the
 * request paused: `leaveUnread` ends the exchange after the answer.
 */
export function readLimited(req: Body, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    checkDeclaredLength(req.headers["content-length"], maxBytes);
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error?: unknown) => {
      req.off("data", onData).off("end", onEnd).off("error", done).off("close", onClose);
      if (error) reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      req.pause();
      done(tooLarge(maxBytes));
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onClose = () => done(new ConnectError("the client went away", Code.Canceled));
    req.on("data", onData).once("end", onEnd).once("error", done).once("close", onClose);
  });
}

// What of an unread body is still read (and dropped) after the answer, so
// that a small request's connection or stream ends cleanly.
const DRAIN_BYTES = 64 * 1024;

/**
 * Before answering a request whose body was not read to its end (refused
 * before it was read, or too large): after the answer, what the client still
 * sends is read and dropped, up to DRAIN_BYTES; past that the connection
 * (HTTP/1.1) or the stream (HTTP/2) is reset, which stops the client
 * sending. The answer is out first: closing a socket with unread data
 * resets it at once, and what was not yet sent is lost.
 */
export function leaveUnread(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  if (req.readableEnded) return;
  let dropped = 0;
  let answered = false;
  let over = false;
  const reset = () => {
    if (!("stream" in req)) return void req.socket.destroy();
    // CANCEL: with NO_ERROR, the code RFC 9113 suggests, Node sends no RST_STREAM once the answer is out (clients that have their answer ignore the reset).
    if (!req.stream.destroyed) req.stream.close(http2.constants.NGHTTP2_CANCEL);
  };
  const drop = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped <= DRAIN_BYTES || over) return;
    over = true;
    if (answered) reset();
  };
  if ("stream" in req) {
    // Read from now on: Node resets a stream it never read from as soon as the answer is out, before the client
    // has it, and gRPC clients take that for an error of their own. The stream's own 'finish' is the answer being
    // out (the compatibility response's comes only when the stream closes).
    req.on("data", drop).resume();
    req.stream.once("finish", () => {
      answered = true;
      if (over) reset();
    });
    return;
  }
  // HTTP/1.1: Node reads and drops the rest of a request it was not reading after its answer (or leaves a paused one
  // waiting): counted from then on.
  (res as ServerResponse).once("finish", () => {
    answered = true;
    if (req.readableEnded) return;
    req.on("data", drop).resume();
  });
}
