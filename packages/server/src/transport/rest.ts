// The REST API, derived at start-up from the google.api.http annotations of
// the service descriptors: no route is written by hand. A REST request
// becomes the RPC's request message (REST JSON mapping of
// @heliosdb/replication-proto), is handed to the same implementation through
// the same interceptors as every other protocol (in process: no encoding in
// between), and its response or error is written in the spec's JSON.
import type { IncomingMessage, ServerResponse } from "node:http";
import { create, type DescMethod, type DescService, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { FieldMaskSchema, type FieldMask } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  fromRest,
  httpRoutes,
  pathTemplate,
  restBodyPaths,
  restFieldName,
  restQueryToJson,
  toRestJson,
  type HttpRoute,
} from "@heliosdb/replication-proto";
import { asApiError, envelope, apiError } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import type { Invoker } from "./invoke";

/** A route of the contract (httpRoutes) with the pattern its paths match. */
export interface RestRoute extends HttpRoute {
  pattern: RegExp;
}

/** Every annotated unary RPC of `services` as a route. */
export function restRoutes(services: readonly DescService[]): RestRoute[] {
  return services.flatMap(httpRoutes).map((route) => ({ ...route, pattern: pathPattern(route.template) }));
}

// A path template as a RegExp: each variable one segment, captured in order.
function pathPattern(template: string): RegExp {
  const source = pathTemplate(template)
    .map((part) => ("variable" in part ? "([^/]+)" : part.literal.replace(/[.*+?^$()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`);
}

// Request headers a REST call forwards to the RPC (besides its request id).
const FORWARDED = ["authorization", "x-api-key", "idempotency-key"];
const MAX_BODY = 1 << 20;

/**
 * Body fields an RPC's request does not take because they cannot change
 * that way, by RPC ("ReplicationService.UpdateReplication") and REST key,
 * with what to do instead: a VALIDATION_ERROR naming them, rather than the
 * "unknown field" of a key the API has never heard of.
 */
export type Unchangeable = Record<string, Record<string, string>>;

/** A handler for REST paths; resolves false for paths it does not serve (not under /v1/). */
export function restHandler(routes: RestRoute[], invoker: Invoker, unchangeable: Unchangeable = {}) {
  // Routes by their number of path segments: a path is tried only against templates of its length.
  const byLength = new Map<number, RestRoute[]>();
  for (const route of routes) {
    const n = segments(route.template);
    byLength.set(n, [...(byLength.get(n) ?? []), route]);
  }
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = parseUrl(req.url ?? "/");
    if (!url.pathname.startsWith("/v1/")) return false;
    const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
    try {
      const candidates = byLength.get(segments(url.pathname)) ?? [];
      const route = candidates.find((r) => r.verb === req.method && r.pattern.test(url.pathname));
      const matching = route ? [route] : candidates.filter((r) => r.pattern.test(url.pathname));
      if (url.pathname === "/v1/ws") throw apiError("UNIMPLEMENTED", "the WebSocket API (/v1/ws) arrives with the streaming milestone", { milestone: "streaming" });
      if (matching.length === 0) throw apiError("NOT_FOUND", `no such endpoint: ${url.pathname}`, { path: url.pathname });
      if (!route) {
        res.setHeader("Allow", [...new Set(matching.map((r) => r.verb))].join(", "));
        throw apiError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${url.pathname}`, { allow: matching.map((r) => r.verb) });
      }
      const input = route.body ? await requestJson(route, url, req, unchangeable[`${route.method.parent.name}.${route.method.name}`]) : { json: paramsJson(route, url) };
      const message = fromRest(route.method.input, input.json);
      // PATCH changes exactly the fields present in the body.
      if (input.mask) (message as unknown as { updateMask: FieldMask }).updateMask = create(FieldMaskSchema, { paths: input.mask });
      const header = new Headers();
      header.set(REQUEST_ID, requestId);
      for (const name of FORWARDED) {
        const value = req.headers[name];
        if (typeof value === "string") header.set(name, value);
      }
      const response = await invoker.unary({
        method: route.method,
        message,
        header,
        requestMethod: req.method ?? "GET",
        url: url.href,
        controller: abortedOnClose(res),
      });
      const replayed = response.header.get("idempotent-replayed");
      if (replayed) res.setHeader("Idempotent-Replayed", replayed);
      if (route.status === 204) {
        res.writeHead(204, { "X-Request-Id": requestId }).end();
        return true;
      }
      const output = route.responseBody ? responseField(route.method, response.message, route.responseBody) : toRestJson(route.method.output, response.message as never);
      send(res, route.status, output, requestId);
    } catch (e) {
      const { status, body } = envelope(asApiError(e), requestId);
      send(res, status, JSON.stringify(body), requestId);
    }
    return true;
  };
}

// A path of plain segments (no dot segment, no empty one, nothing escaped)
// and no query is its own pathname; anything else goes through the WHATWG
// parser, which normalizes it.
const PLAIN_PATH = /^(?:\/[\w~-][\w.~-]*)+$/;

function parseUrl(raw: string): URL | { pathname: string; searchParams: URLSearchParams; href: string } {
  return PLAIN_PATH.test(raw) ? { pathname: raw, searchParams: NO_PARAMS, href: `http://localhost${raw}` } : new URL(raw, "http://localhost");
}

const NO_PARAMS = new URLSearchParams();

function segments(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47 /* "/" */) n++;
  return n;
}

// The REST JSON of the path variables and query parameters.
function paramsJson(route: RestRoute, url: ReturnType<typeof parseUrl>): JsonObject {
  const values = route.variables.length > 0 ? route.pattern.exec(url.pathname)! : [];
  const params: [string, string][] = route.variables.map((name, i) => [name, decodeURIComponent(values[i + 1]!)]);
  if (route.body !== "*") params.push(...url.searchParams.entries());
  else if ([...url.searchParams.keys()].length > 0) {
    throw apiError("INVALID_REQUEST", "this endpoint takes its parameters in the JSON body, not the query string", {
      violations: [...url.searchParams.keys()].map((field) => ({ field, description: "not a query parameter of this endpoint" })),
    });
  }
  return restQueryToJson(route.method.input, params);
}

// The REST JSON of a request with a body: path variables, query parameters, and the body.
async function requestJson(
  route: RestRoute,
  url: ReturnType<typeof parseUrl>,
  req: IncomingMessage,
  unchangeable: Record<string, string> = {},
): Promise<{ json: JsonObject; mask?: string[] }> {
  const json = paramsJson(route, url);
  const body = await readBody(req);
  const refused = typeof body === "object" && body !== null && !Array.isArray(body) ? Object.keys(body).filter((key) => key in unchangeable) : [];
  if (refused.length > 0) {
    throw apiError("VALIDATION_ERROR", `${refused.join(" and ")} cannot be changed by ${route.verb} ${route.template}`, {
      violations: refused.map((field) => ({ field, description: unchangeable[field]! })),
    });
  }
  if (route.body === "*") {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw apiError("INVALID_REQUEST", "the body must be a JSON object", { violations: [{ field: "", description: "expected a JSON object" }] });
    }
    for (const variable of route.variables) {
      if (variable in body) throw apiError("INVALID_REQUEST", `${variable} is given by the path`, { violations: [{ field: variable, description: "set by the path" }] });
    }
    const hasMask = route.method.input.fields.some((f) => f.name === "update_mask");
    const mask = route.verb === "PATCH" && hasMask && !("update_mask" in body) ? restBodyPaths(route.method.input, body) : undefined;
    return { json: { ...json, ...body }, ...(mask ? { mask } : {}) };
  }
  const field = route.method.input.fields.find((f) => f.name === route.body)!;
  return { json: { ...json, [restFieldName(field)]: body } };
}

async function readBody(req: IncomingMessage): Promise<JsonValue> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw apiError("INVALID_REQUEST", `the body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return {};
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    throw apiError("INVALID_REQUEST", `malformed JSON: ${(e as Error).message}`, { violations: [{ field: "", description: "malformed JSON" }] });
  }
}

function responseField(method: DescMethod, message: unknown, name: string): string {
  const field = method.output.fields.find((f) => f.name === name)!;
  const value = (message as Record<string, unknown>)[field.localName];
  return field.fieldKind === "message" && value ? toRestJson(field.message, value as never) : "null";
}

// Handlers may stop work for a client that went away, as with Connect.
function abortedOnClose(res: ServerResponse): AbortController {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new ConnectError("the client went away", Code.Canceled));
  });
  return controller;
}

// One writeHead with every header, and the body encoded once (its length is then known).
function send(res: ServerResponse, status: number, text: string, requestId: string): void {
  const body = Buffer.from(text, "utf8");
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": body.length, "X-Request-Id": requestId });
  res.end(body);
}
