// CORS, so that browsers on the configured origins can call REST and
// gRPC-web (the dashboard): a preflight is answered here, before any route
// (it used to be a 405), and every answer to an allowed origin says which of
// its headers a script may read — the gRPC status, the request id and the
// rate-limit headers among them. Credentials travel in headers
// (Authorization, X-API-Key), never in cookies: no Allow-Credentials.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { apiError, envelope } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import { RATE_LIMIT_HEADERS } from "./rate-limit";

/** Response headers a browser script may read. */
export const EXPOSED_HEADERS = [
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "x-request-id",
  "idempotent-replayed",
  ...RATE_LIMIT_HEADERS,
  "allow",
];

/** Request headers a browser may send (besides the CORS-safelisted ones). */
export const ALLOWED_HEADERS = [
  "authorization",
  "x-api-key",
  "content-type",
  "idempotency-key",
  "x-request-id",
  "connect-protocol-version",
  "connect-timeout-ms",
  "connect-content-encoding",
  "connect-accept-encoding",
  "grpc-timeout",
  "x-grpc-web",
  "x-user-agent",
];

const METHODS = "GET, POST, PATCH, DELETE";
const MAX_AGE_SECONDS = 7200;

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/**
 * A CORS step for the HTTP handler: `origins` are exact origins
 * ("https://dashboard.example.com") or "*" (any). Returns true when it
 * answered the request (a preflight); otherwise it has added the headers an
 * allowed origin's answer needs and the request goes on.
 */
export function corsHandler(origins: readonly string[]): (req: Request, res: Response) => boolean {
  const any = origins.includes("*");
  const allowed = new Set(origins);
  return (req, res) => {
    const origin = req.headers.origin;
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (typeof origin !== "string") return false;
    const ok = any || allowed.has(origin);
    if (ok) {
      res.setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
      res.setHeader("Access-Control-Expose-Headers", EXPOSED_HEADERS.join(", "));
    }
    // The answer depends on the origin: caches must keep one per origin.
    if (!any) res.setHeader("Vary", "Origin");
    if (!preflight) return false;
    const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
    if (!ok) {
      const { status, body } = envelope(apiError("FORBIDDEN", `the origin ${origin} may not call this API from a browser (see --cors-origins)`, { origin }), requestId);
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "X-Request-Id": requestId });
      res.end(JSON.stringify(body));
      return true;
    }
    res.writeHead(204, {
      "Access-Control-Allow-Methods": METHODS,
      "Access-Control-Allow-Headers": ALLOWED_HEADERS.join(", "),
      "Access-Control-Max-Age": String(MAX_AGE_SECONDS),
      "X-Request-Id": requestId,
    });
    res.end();
    return true;
  };
}
