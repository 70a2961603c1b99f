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
import { CallHeaders } from "./call-headers";
import { encodedOnce } from "./encoded";
import { asApiError, envelope, apiError } from "./errors";
import { leaveUnread, openGuard, readLimited, type Guard } from "./guard";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import type { Invoker } from "./invoke";
import { copyRateLimitHeaders } from "./rate-limit";

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

/**
 * Body fields an RPC's request does not take because they cannot change
 * that way, by RPC ("ReplicationService.UpdateReplication") and REST key,
 * with what to do instead: a VALIDATION_ERROR naming them, rather than the
 * "unknown field" of a key the API has never heard of.
 */
export type Unchangeable = Record<string, Record<string, string>>;

/** A handler for REST paths; resolves false for paths it does not serve (not under /v1/). */
export function restHandler(routes: RestRoute[], invoker: Invoker, guard: Guard = openGuard(), unchangeable: Unchangeable = {}) {
  // Routes by their number of path segments: a path is tried only against templates of its length.
  const byLength = new Map<number, RestRoute[]>();
  for (const route of routes) {
    const n = segments(route.template);
    byLength.set(n, [...(byLength.get(n) ?? []), route]);
  }
  // Each route's JSON of its response; a message answered to many calls (frozen) is written once.
  const writers = new Map(
    routes.map((route) => [
      route,
      encodedOnce((message: object) => (route.responseBody ? responseField(route.method, message, route.responseBody) : toRestJson(route.method.output, message as never))),
    ]),
  );
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    let url: RestUrl;
    try {
      url = parseUrl(req.url ?? "/");
    } catch {
      return false; // not a URL this server has: the fallback's 404
    }
    if (!url.pathname.startsWith("/v1/")) return false;
    const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
    let route: RestRoute | undefined;
    try {
      const candidates = byLength.get(segments(url.pathname)) ?? [];
      route = candidates.find((r) => r.verb === req.method && r.pattern.test(url.pathname));
      const matching = route ? [route] : candidates.filter((r) => r.pattern.test(url.pathname));
      if (url.pathname === "/v1/ws") throw apiError("INVALID_REQUEST", "/v1/ws is the WebSocket API (spec §4): open it with an Upgrade: websocket request", { violations: [{ field: "", description: "not a WebSocket upgrade" }] });
      if (matching.length === 0) throw apiError("NOT_FOUND", `no such endpoint: ${url.pathname}`, { path: url.pathname });
      if (!route) {
        res.setHeader("Allow", [...new Set(matching.map((r) => r.verb))].join(", "));
        throw apiError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${url.pathname}`, { allow: matching.map((r) => r.verb) });
      }
      const header = new CallHeaders();
      header.set(REQUEST_ID, requestId);
      for (const name of FORWARDED) {
        const value = req.headers[name];
        if (typeof value === "string") header.set(name, value);
      }
      // Who is calling, before anything of the request is read or parsed.
      await guard.admit(`${route.method.parent.name}.${route.method.name}`, header);
      const input = route.body
        ? await requestJson(route, url, req, guard.maxBodyBytes, unchangeable[`${route.method.parent.name}.${route.method.name}`])
        : { json: paramsJson(route, url) };
      const message = fromRest(route.method.input, input.json);
      // PATCH changes exactly the fields present in the body.
      if (input.mask) (message as unknown as { updateMask: FieldMask }).updateMask = create(FieldMaskSchema, { paths: input.mask });
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
      copyRateLimitHeaders(response.header, res);
      if (route.status === 204) {
        res.writeHead(204, { "X-Request-Id": requestId }).end();
        return true;
      }
      const output = writers.get(route)!(response.message);
      send(res, route.status, output, requestId);
    } catch (e) {
      const error = asApiError(e, (cause) => guard.log(cause, requestId));
      const { status, body } = envelope(error, requestId);
      if (route?.body && route.body !== "*") namedAsSent(body, route.body);
      // Answered already (a request that timed out, answered by the listener): nothing more to say.
      if (res.headersSent) return true;
      copyRateLimitHeaders(error.metadata, res);
      leaveUnread(req, res);
      send(res, status, JSON.stringify(body), requestId);
    }
    return true;
  };
}

// A route whose body is one field of the request (`body: "connection"`):
// the client sent that field's message as the whole body, so the fields of
// a refusal are named as it wrote them (`user`, not `connection.user`).
function namedAsSent(body: JsonObject, bodyField: string): void {
  const details = (body.error as JsonObject).details as JsonObject;
  const prefix = `${bodyField}.`;
  const strip = (field: unknown) => (typeof field === "string" && field.startsWith(prefix) ? field.slice(prefix.length) : field);
  if (typeof details.field === "string") details.field = strip(details.field) as string;
  if (Array.isArray(details.violations)) for (const v of details.violations as JsonObject[]) v.field = strip(v.field) as string;
}

// A path of plain segments (no dot segment, no empty one, nothing escaped)
// and no query is its own pathname; anything else goes through the WHATWG
// parser, which normalizes it. The query is decoded strictly (queryPairs).
const PLAIN_PATH = /^(?:\/[\w~-][\w.~-]*)+$/;

interface RestUrl {
  pathname: string;
  search: string;
  href: string;
}

function parseUrl(raw: string): RestUrl {
  if (PLAIN_PATH.test(raw)) return { pathname: raw, search: "", href: `http://localhost${raw}` };
  const url = new URL(raw, "http://localhost");
  return { pathname: url.pathname, search: url.search, href: url.href };
}

function segments(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47 /* "/" */) n++;
  return n;
}

// Percent-decoding that refuses what does not decode to UTF-8 (URLSearchParams would put U+FFFD in its place).
function decode(text: string, field: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw apiError("INVALID_REQUEST", `${field} is not valid percent-encoded UTF-8`, { violations: [{ field, description: "not valid percent-encoded UTF-8" }] });
  }
}

// The query string's parameters, as application/x-www-form-urlencoded, decoded strictly.
function queryPairs(search: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const part of search.replace(/^\?/, "").split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const rawName = (eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, " ");
    const name = decode(rawName, "query parameter name");
    pairs.push([name, decode((eq < 0 ? "" : part.slice(eq + 1)).replace(/\+/g, " "), name)]);
  }
  return pairs;
}

// The REST JSON of the path variables and query parameters.
function paramsJson(route: RestRoute, url: RestUrl): JsonObject {
  const values = route.variables.length > 0 ? route.pattern.exec(url.pathname)! : [];
  const params: [string, string][] = route.variables.map((name, i) => [name, decode(values[i + 1]!, name)]);
  const query = queryPairs(url.search);
  if (route.body !== "*") params.push(...query);
  else if (query.length > 0) {
    throw apiError("INVALID_REQUEST", "this endpoint takes its parameters in the JSON body, not the query string", {
      violations: query.map(([field]) => ({ field, description: "not a query parameter of this endpoint" })),
    });
  }
  return restQueryToJson(route.method.input, params);
}

// The REST JSON of a request with a body: path variables, query parameters, and the body.
async function requestJson(
  route: RestRoute,
  url: RestUrl,
  req: IncomingMessage,
  maxBytes: number,
  unchangeable: Record<string, string> = {},
): Promise<{ json: JsonObject; mask?: string[] }> {
  const json = paramsJson(route, url);
  const body = await readBody(req, maxBytes);
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

// JSON only (application/json, or a +json type), in UTF-8: a form or text/plain body is not read as JSON.
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

async function readBody(req: IncomingMessage, maxBytes: number): Promise<JsonValue> {
  const bytes = await readLimited(req, maxBytes);
  if (bytes.length === 0) return {};
  const type = req.headers["content-type"];
  if (!type || !JSON_TYPE.test(type)) {
    throw apiError("UNSUPPORTED_MEDIA_TYPE", "the body must be JSON: send Content-Type: application/json", { content_type: type ?? "" });
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw apiError("INVALID_REQUEST", "the body is not valid UTF-8", { violations: [{ field: "", description: "not valid UTF-8" }] });
  }
  if (!text.trim()) return {};
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw apiError("INVALID_REQUEST", "malformed JSON", { violations: [{ field: "", description: "malformed JSON" }] });
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
