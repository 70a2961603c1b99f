// GET /.well-known/jwks.json: the public keys of the server's own tokens
// (RFC 7517), for anyone who checks them — no credentials needed. Only the
// asymmetric keys that verify now are listed; HS256 keys are secrets.
import type { JWK } from "jose";
import { apiError, envelope } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import type { App } from "./listen";

export const JWKS_PATH = "/.well-known/jwks.json";

type Request = Parameters<App>[0];
type Response = Parameters<App>[1];

/** A handler for GET/HEAD /.well-known/jwks.json; returns false for every other path. */
export function jwksHandler(keys: { jwks(): { keys: JWK[] } }): (req: Request, res: Response) => boolean {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== JWKS_PATH) return false;
    let status = 200;
    let body: unknown = keys.jwks();
    const headers: Record<string, string> = { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "public, max-age=300" };
    if (req.method !== "GET" && req.method !== "HEAD") {
      const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
      ({ status, body } = envelope(apiError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${JWKS_PATH}`, { allow: ["GET", "HEAD"] }), requestId));
      Object.assign(headers, { Allow: "GET, HEAD", "X-Request-Id": requestId, "Cache-Control": "no-store" });
    }
    const text = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { ...headers, "Content-Length": String(text.length) });
    if (req.method === "HEAD") res.end();
    else res.end(text);
    return true;
  };
}
