// What the OAuth endpoints share as plain HTTP (RFC 6749): reading a bounded
// form body, answering JSON with `Cache-Control: no-store`, and the §6
// envelope for what is not an OAuth error (a wrong method, a body too large).
import type { ConnectError } from "@connectrpc/connect";
import { envelope } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import type { App } from "./listen";
import { OAuthError } from "./oauth-tokens";

export type Request = Parameters<App>[0];
export type Response = Parameters<App>[1];

/** The largest form the OAuth endpoints read. */
export const MAX_FORM_BYTES = 64 * 1024;

export const NO_STORE = { "Cache-Control": "no-store", Pragma: "no-cache" };

export function requestId(req: Request): string {
  return requestIdOf(req.headers[REQUEST_ID] as string | undefined);
}

/**
 * The request's application/x-www-form-urlencoded body as parameters; a
 * parameter given twice, another content type or a body over the limit is
 * an OAuthError invalid_request (RFC 6749 §3.1, §3.2).
 */
export async function readForm(req: Request): Promise<Map<string, string>> {
  const type = String(req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    req.resume();
    throw new OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new OAuthError("invalid_request", `the body is over ${MAX_FORM_BYTES} bytes`, 413);
    chunks.push(chunk);
  }
  return params(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
}

/** Parameters by name; one given twice, or with a NUL, is refused. */
export function params(search: URLSearchParams): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of search) {
    if (out.has(name)) throw new OAuthError("invalid_request", `${name} is given more than once`);
    if (value.includes("\0")) throw new OAuthError("invalid_request", `${name} holds a NUL character`);
    out.set(name, value);
  }
  return out;
}

export function sendJson(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...NO_STORE, ...headers });
  res.end(text);
}

/** An RFC 6749 §5.2 error object; invalid_client with 401 asks for HTTP Basic (§5.2). */
export function sendOAuthError(res: Response, error: OAuthError, id: string): void {
  const headers: Record<string, string> = { "X-Request-Id": id };
  if (error.status === 401) headers["WWW-Authenticate"] = 'Basic realm="heliosdb", charset="UTF-8"';
  sendJson(res, error.status, { error: error.error, error_description: error.description }, headers);
}

/** The §6 envelope, for answers that are not OAuth's (405, 500). */
export function sendEnvelope(res: Response, error: ConnectError, id: string, headers: Record<string, string> = {}): void {
  const { status, body } = envelope(error, id);
  sendJson(res, status, body, { "X-Request-Id": id, ...headers });
}

/** This server's origin as the client reached it (for discovery and the pages' links). */
export function originOf(req: Request, tls: boolean): string {
  const host = String(req.headers[":authority"] ?? req.headers.host ?? "localhost");
  return `${tls ? "https" : "http"}://${/^[A-Za-z0-9.:[\]-]+$/.test(host) ? host : "localhost"}`;
}
