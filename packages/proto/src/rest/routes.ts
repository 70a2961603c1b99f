// Which RPCs have a REST route, and what the route is, read from their
// google.api.http rules: the one choice the server's REST transcoder, the
// OpenAPI document and the SDKs make alike.
import { getOption, hasOption, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import { http } from "../gen/google/api/annotations_pb";
import type { HttpRule } from "../gen/google/api/http_pb";
import { rest_success_status } from "../gen/heliosdb/replication/v1/rest_pb";

export interface HttpRoute {
  method: DescMethodUnary;
  rule: HttpRule;
  /** GET, POST, PUT, PATCH or DELETE. */
  verb: string;
  /** The path template, e.g. /v1/replications/{id}. */
  template: string;
  /** The request fields the path variables fill, in order. */
  variables: string[];
  /** google.api.http's body: "" (none), "*" (the rest of the request) or one field. */
  body: string;
  /** google.api.http's response_body: "" (the whole response) or one field. */
  responseBody: string;
  /** The status of success: rest_success_status, else 200. */
  status: number;
}

/** One piece of a path template: literal text, or a variable naming a request field. */
export type PathPart = { literal: string } | { variable: string };

/**
 * The routes of a service, in declaration order: every unary RPC with a
 * google.api.http rule of a standard verb. Streaming RPCs and custom verbs
 * are served over gRPC, gRPC-web and Connect only.
 */
export function httpRoutes(service: DescService): HttpRoute[] {
  const routes: HttpRoute[] = [];
  for (const method of service.methods) {
    if (method.methodKind !== "unary" || !hasOption(method, http)) continue;
    const rule = getOption(method, http);
    if (rule.pattern.case === undefined || rule.pattern.case === "custom") continue;
    const template = rule.pattern.value;
    routes.push({
      method: method as DescMethodUnary,
      rule,
      verb: rule.pattern.case.toUpperCase(),
      template,
      variables: pathVariables(template),
      body: rule.body,
      responseBody: rule.responseBody,
      status: hasOption(method, rest_success_status) ? getOption(method, rest_success_status) : 200,
    });
  }
  return routes;
}

/**
 * A path template in pieces: `/v1/replications/{id}:start` → "/v1/replications/",
 * {id}, ":start". A variable's own pattern (`{name=segments/*}`) is dropped:
 * a variable matches one path segment.
 */
export function pathTemplate(template: string): PathPart[] {
  return [...template.matchAll(/\{([^}=]+)(=[^}]*)?\}|[^{]+/g)].map((m) => (m[1] ? { variable: m[1] } : { literal: m[0] }));
}

/** The variables of a path template, in order: `/v1/replications/{id}` → ["id"]. */
export function pathVariables(template: string): string[] {
  return pathTemplate(template).flatMap((part) => ("variable" in part ? [part.variable] : []));
}
