// Any unary RPC of the contract over REST, from its google.api.http rule: the
// request message becomes the spec's JSON (the REST mapping of
// @heliosdb/replication-proto, as the server reads it), its path variables
// go into the path, the rule's body into the body and the rest into the
// query; the answer is read back into the RPC's response message. So REST
// answers the same message objects as the Connect, gRPC-web and gRPC
// transports, and no route is written by hand.
import type { DescMessage, DescMethodUnary, DescService, JsonObject, JsonValue, MessageShape } from "@bufbuild/protobuf";
import { httpRoutes, readRest, restFieldName, toRestRequest, type HttpRoute } from "@heliosdb/replication-proto";
import { HeliosDBError } from "../core/errors";
import { restCall, type RestConfig, type RestRequest } from "./rest-fetch";

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

const routes = new WeakMap<DescService, Map<string, HttpRoute>>();
/** Per method: its route, and the JSON key its answer's body goes under when the rule names a response_body. */
const answers = new WeakMap<DescMethodUnary, { route: HttpRoute; bodyKey: string | undefined }>();

/** The REST route of a unary RPC (its google.api.http rule), if it has one. */
export function routeOf(method: DescMethodUnary): HttpRoute | undefined {
  let byName = routes.get(method.parent);
  if (!byName) routes.set(method.parent, (byName = new Map(httpRoutes(method.parent).map((r) => [r.method.name, r]))));
  return byName.get(method.name);
}

/** Calls `method` with `message` over REST; answers its response message, or throws a HeliosDBError. */
export async function restInvoke<I extends DescMessage, O extends DescMessage>(
  config: RestConfig,
  method: DescMethodUnary<I, O>,
  message: MessageShape<I>,
  options: CallOptions = {},
): Promise<MessageShape<O>> {
  const known = answerOf(method as DescMethodUnary);
  if (!known) {
    throw new HeliosDBError({ code: "UNIMPLEMENTED", message: `${method.parent.typeName}.${method.name} has no REST route: use the connect, grpc-web or grpc transport` });
  }
  const request = requestOf(known.route, method.input, toRestRequest(method.input, message));
  if (options.signal) request.signal = options.signal;
  const answer = await restCall<JsonValue | undefined>(config, request);
  const json = known.bodyKey ? { [known.bodyKey]: answer ?? null } : (answer ?? {});
  // Our server's answer, read in one walk (fromRest's checks are for untrusted requests); what a newer server added is skipped.
  return readRest(method.output, json);
}

function answerOf(method: DescMethodUnary): { route: HttpRoute; bodyKey: string | undefined } | undefined {
  let known = answers.get(method);
  if (known) return known;
  const route = routeOf(method);
  if (!route) return undefined;
  const field = route.responseBody ? method.output.fields.find((f) => f.name === route.responseBody) : undefined;
  known = { route, bodyKey: field ? restFieldName(field) : undefined };
  answers.set(method, known);
  return known;
}

// The path (under the base URL, which ends in /v1), the body and the query of a request's spec JSON.
function requestOf(route: HttpRoute, input: DescMessage, json: JsonObject): RestRequest {
  const plan = planOf(route, input);
  let path = "";
  for (const part of plan.path) {
    if (typeof part === "string") {
      path += part;
      continue;
    }
    const value = json[part.key];
    if (value === undefined || value === null || value === "") {
      throw new HeliosDBError({ code: "INVALID_REQUEST", message: `${part.key} is required (it is part of the path ${route.template})`, details: { violations: [{ field: part.key, description: "required" }] } });
    }
    path += encodeURIComponent(String(value));
  }
  const verb = route.verb as RestRequest["method"];
  // What is not in the path: the whole body (body "*"), or the body's field and the query.
  let rest: JsonObject | undefined;
  let body: JsonValue | undefined;
  for (const key in json) {
    if (plan.pathKeys.has(key)) continue;
    if (key === plan.bodyKey) body = json[key];
    else (rest ??= {})[key] = json[key]!;
  }
  if (route.body === "*") return { method: verb, path, body: rest ?? {} };
  const request: RestRequest = { method: verb, path };
  if (plan.bodyKey) request.body = body ?? {};
  if (rest) request.query = queryOf(rest);
  return request;
}

// A route's path as literal text and the JSON keys of its variables, and its body's key: worked out once per route.
interface RoutePlan {
  path: (string | { key: string })[];
  pathKeys: Set<string>;
  bodyKey: string | undefined;
}

const plans = new WeakMap<HttpRoute, RoutePlan>();

function planOf(route: HttpRoute, input: DescMessage): RoutePlan {
  let plan = plans.get(route);
  if (plan) return plan;
  const keyOf = (protoName: string) => {
    const field = input.fields.find((f) => f.name === protoName);
    if (!field) throw new HeliosDBError({ code: "INTERNAL_ERROR", message: `the route ${route.template} names ${protoName}, which ${input.typeName} has not` });
    return restFieldName(field);
  };
  const path: RoutePlan["path"] = [];
  const template = route.template.replace(/^\/v1(?=\/)/, "");
  let last = 0;
  for (const m of template.matchAll(/\{([^}=]+)(?:=[^}]*)?\}/g)) {
    path.push(template.slice(last, m.index), { key: keyOf(m[1]!) });
    last = m.index! + m[0].length;
  }
  path.push(template.slice(last));
  const pathKeys = new Set(path.flatMap((part) => (typeof part === "string" ? [] : [part.key])));
  plan = { path, pathKeys, bodyKey: route.body && route.body !== "*" ? keyOf(route.body) : undefined };
  plans.set(route, plan);
  return plan;
}

// The rest of the request as query parameters: nested messages by dotted names, lists as repeated parameters.
function queryOf(json: JsonObject, prefix = "", out: [string, string][] = []): [string, string][] {
  for (const [key, value] of Object.entries(json)) {
    const name = prefix + key;
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, String(v)]);
    else if (typeof value === "object") queryOf(value, `${name}.`, out);
    else out.push([name, String(value)]);
  }
  return out;
}
