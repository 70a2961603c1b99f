// Every REST endpoint of spec §2 is a google.api.http annotation on its RPC,
// read here from the service descriptors, not from the .proto text.
import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { http } from "../src/gen/google/api/annotations_pb";
import type { HttpRule } from "../src/gen/google/api/http_pb";
import { rest_success_status } from "../src/gen/heliosdb/replication/v1/rest_pb";
import { services } from "../src/services";
import { methodOf, specExamples } from "./spec";

interface Route {
  method: string;
  path: string;
  body: string;
}

function routeOf(method: DescMethod): Route | undefined {
  if (!hasOption(method, http)) return undefined;
  const rule: HttpRule = getOption(method, http);
  if (rule.pattern.case === undefined || rule.pattern.case === "custom") return undefined;
  return { method: rule.pattern.case.toUpperCase(), path: rule.pattern.value, body: rule.body };
}

// Path variables are compared by position: the spec writes {replication_id}
// where the spec's GetReplicationRequest names the field `id`.
const shape = (path: string) => path.replace(/\{[^}]+\}/g, "{}");

// One entry per endpoint of §2: method, path, RPC, and whether the spec sends a body.
const endpoints = new Map<string, { method: string; path: string; rpc: string; body: boolean; status?: number }>();
for (const e of specExamples) {
  const key = `${e.method} ${e.path}`;
  const seen = endpoints.get(key) ?? { method: e.method, path: e.path, rpc: e.rpc, body: false };
  if (e.kind === "request") seen.body = true;
  if (e.status !== undefined) seen.status = e.status;
  endpoints.set(key, seen);
}

describe("google.api.http annotations", () => {
  test("the examples cover all 18 endpoints of spec §2", () => {
    expect(endpoints.size).toBe(18);
  });

  for (const [key, endpoint] of endpoints) {
    test(`${key} → ${endpoint.rpc.split(".").pop()}`, () => {
      const route = routeOf(methodOf(endpoint.rpc));
      expect(route, "annotated").toBeDefined();
      expect(route!.method).toBe(endpoint.method);
      expect(shape(route!.path)).toBe(shape(`/v1${endpoint.path}`));
      expect(route!.body).toBe(endpoint.body ? "*" : "");
    });
  }

  test("success statuses are the spec's: 201 create, 202 failover and migration, 204 delete", () => {
    const status = (rpc: string) => {
      const method = methodOf(rpc);
      return hasOption(method, rest_success_status) ? getOption(method, rest_success_status) : 200;
    };
    for (const endpoint of endpoints.values()) {
      if (endpoint.status !== undefined) expect(status(endpoint.rpc), endpoint.rpc).toBe(endpoint.status);
    }
    // §2.1.5 answers "204 No Content", which has no example body.
    expect(status("heliosdb.replication.v1.ReplicationService/DeleteReplication")).toBe(204);
  });

  test("the extension endpoints are annotated", () => {
    const all = services.flatMap((s) => s.methods.map(routeOf)).filter((r) => r !== undefined);
    const keys = all.map((r) => `${r.method} ${r.path}`);
    expect(keys).toEqual(
      expect.arrayContaining([
        "GET /v1/migrations",
        "POST /v1/connections",
        "GET /v1/connections",
        "GET /v1/connections/{connection_id}",
        "DELETE /v1/connections/{connection_id}",
        "GET /v1/tenants/{tenant_id}/routing",
      ]),
    );
    expect(new Set(keys).size, "no two RPCs share a route").toBe(keys.length);
  });

  test("every path variable and body names a field of the request", () => {
    for (const service of services) {
      for (const method of service.methods) {
        const route = routeOf(method);
        if (!route) continue;
        for (const [, variable] of route.path.matchAll(/\{([^}=]+)\}/g)) {
          expect(method.input.fields.map((f) => f.name), `${method.name} {${variable}}`).toContain(variable);
        }
        if (route.body && route.body !== "*") {
          expect(method.input.fields.map((f) => f.name), `${method.name} body`).toContain(route.body);
        }
      }
    }
  });

  test("every unary RPC has a REST route; streams are served by gRPC, Connect and WebSocket", () => {
    for (const service of services) {
      for (const method of service.methods) {
        expect(routeOf(method) !== undefined, `${service.name}.${method.name}`).toBe(method.methodKind === "unary");
      }
    }
  });
});
