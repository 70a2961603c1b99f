// The OpenAPI document against the server that serves it: every REST route
// the server derives from the contract is documented with its method, path,
// success status, parameters and credentials, and nothing else is; its error
// statuses are the server's; and /v1/openapi.yaml, /v1/openapi.json and
// /docs (Swagger UI from local files only) are served.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { DescMessage } from "@bufbuild/protobuf";
import { fromRest, isWellKnown, restFieldName, restQueryToJson, restUnion, services } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { RPC_PERMISSIONS } from "./auth";
import { docsHandler, openApiFile, swaggerUiDir } from "./docs";
import { ERRORS, type ErrorCode } from "./errors";
import { restRoutes, type RestRoute } from "./rest";

// Parsed YAML, walked freely.
type Obj = Record<string, any>;

const file = openApiFile();
const text = readFileSync(file, "utf8");
const doc = parse(text) as Obj;
const routes = restRoutes(services);
const VERBS = ["get", "put", "post", "delete", "patch"];
const documented = Object.entries(doc.paths as Obj).flatMap(([path, item]) =>
  VERBS.filter((verb) => item[verb]).map((verb) => `${verb.toUpperCase()} ${path}`),
);
const openApiPath = (route: RestRoute) => route.template.replace(/\{([^}=]+)=[^}]*\}/g, "{$1}");
const operationOf = (route: RestRoute) => doc.paths[openApiPath(route)]?.[route.verb.toLowerCase()] as Obj | undefined;
const rpcOf = (route: RestRoute) => `${route.method.parent.name}.${route.method.name}`;

describe("the document matches the server's REST routes", () => {
  test("the file is the package's openapi/openapi.yaml, OpenAPI 3.1", () => {
    expect(file).toBe(join(new URL("../../", import.meta.url).pathname, "openapi", "openapi.yaml"));
    expect(doc.openapi).toBe("3.1.0");
  });

  test("every route is documented, and every documented operation is a route", () => {
    expect(routes.length).toBeGreaterThan(20);
    expect(documented.sort()).toEqual(routes.map((r) => `${r.verb} ${openApiPath(r)}`).sort());
  });

  for (const route of routes) {
    describe(`${route.verb} ${route.template} (${rpcOf(route)})`, () => {
      const op = operationOf(route)!;
      const parameters = (op?.parameters ?? []) as Obj[];

      test("operation, success status and body", () => {
        expect(op.operationId).toBe(`${route.method.parent.name}_${route.method.name}`);
        expect(op.tags).toEqual([route.method.parent.name]);
        const success = Object.keys(op.responses).filter((s) => /^[23]/.test(s));
        expect(success).toEqual([String(route.status)]);
        const response = op.responses[String(route.status)];
        if (route.status === 204) expect(response.content).toBeUndefined();
        else expect(response.content["application/json"].schema).toBeDefined();
        if (route.body) expect(op.requestBody.content["application/json"].schema).toBeDefined();
        else expect(op.requestBody).toBeUndefined();
      });

      test("path and query parameters", () => {
        expect(parameters.filter((p) => p.in === "path").map((p) => p.name)).toEqual(route.variables);
        const query = parameters.filter((p) => p.in === "query").map((p) => p.name as string);
        expect(query).toEqual(queryFields(route));
        // Each one is read by the server's own mapping: restQueryToJson, then fromRest.
        for (const p of parameters.filter((p) => p.in === "path" || p.in === "query")) {
          const values = p.schema.type === "array" ? [sample(p.schema.items), sample(p.schema.items)] : [sample(p.schema)];
          const json = restQueryToJson(route.method.input, values.map((v) => [p.name, v]));
          expect(() => fromRest(route.method.input, json), `${p.name}=${values.join(",")}`).not.toThrow();
        }
      });

      test("credentials: a bearer token or an API key where an RPC permission is needed, none elsewhere", () => {
        expect(op.security).toEqual(RPC_PERMISSIONS[rpcOf(route)] ? [{ bearerAuth: [] }, { apiKeyAuth: [] }] : []);
        const statuses = Object.keys(op.responses);
        if (RPC_PERMISSIONS[rpcOf(route)]) expect(statuses).toEqual(expect.arrayContaining(["401", "403"]));
        else expect(statuses).not.toContain("401");
      });

      test("errors: the §6 envelope, at the status the server gives each code", () => {
        const statuses = Object.keys(op.responses);
        expect(statuses).toEqual(expect.arrayContaining(["400", "500", "default"]));
        if (route.variables.length) expect(statuses).toContain("404");
        for (const status of statuses.filter((s) => s === "default" || Number(s) >= 400)) {
          const response = resolve(op.responses[status].$ref as string);
          expect(response.content["application/json"].schema.$ref).toBe("#/components/schemas/ErrorResponse");
          const codes = response["x-error-codes"] as ErrorCode[];
          expect(codes.length).toBeGreaterThan(0);
          for (const code of codes) {
            expect(ERRORS[code], code).toBeDefined();
            if (status !== "default") expect(ERRORS[code].http, `${status} ${code}`).toBe(Number(status));
          }
        }
      });
    });
  }

  test("every §6 error code has a documented response", () => {
    const codes = Object.values(doc.components.responses as Obj).flatMap((r) => r["x-error-codes"] as string[]);
    expect(codes.sort()).toEqual(Object.keys(ERRORS).sort());
  });

  test("security schemes: bearer JWT, and the spec's X-API-Key", () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    expect(doc.components.securitySchemes.apiKeyAuth).toMatchObject({ type: "apiKey", in: "header", name: "X-API-Key" });
    expect(doc.components.securitySchemes.apiKeyAuth.description).toContain("POST /v1/api-keys");
  });
});

describe("serving", () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const handle = docsHandler();
    server = createServer((req, res) => {
      if (!handle(req, res)) res.writeHead(418).end();
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  test("GET /v1/openapi.yaml is the generated file", async () => {
    const res = await fetch(`${base}/v1/openapi.yaml`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/yaml; charset=utf-8");
    expect(await res.text()).toBe(text);
  });

  test("GET /v1/openapi.json is the same document as JSON", async () => {
    const res = await fetch(`${base}/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await res.json()).toEqual(doc);
  });

  test("HEAD answers the headers only; other methods 405 in the §6 envelope", async () => {
    const head = await fetch(`${base}/v1/openapi.yaml`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBe(Buffer.byteLength(text));
    const post = await fetch(`${base}/v1/openapi.yaml`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect(((await post.json()) as Obj).error.code).toBe("METHOD_NOT_ALLOWED");
  });

  test("GET /docs is Swagger UI on local assets only, pointed at /v1/openapi.yaml", async () => {
    const res = await fetch(`${base}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await res.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    expect(refs).toEqual(expect.arrayContaining(["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/swagger-initializer.js"]));
    expect(html).not.toMatch(/https?:\/\/|\/\/[a-z]/i);
    for (const ref of refs) {
      expect(ref).toMatch(/^\/docs\/[\w.-]+$/);
      expect((await fetch(`${base}${ref}`)).status, ref).toBe(200);
    }
    expect((await fetch(`${base}/docs/`)).status).toBe(200);
    const init = await (await fetch(`${base}/docs/swagger-initializer.js`)).text();
    expect(init).toContain('url: "/v1/openapi.yaml"');
    expect(init).toContain('validatorUrl: "none"');
  });

  test("GET /docs/swagger-ui-bundle.js is swagger-ui-dist's file", async () => {
    const res = await fetch(`${base}/docs/swagger-ui-bundle.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(swaggerUiDir(), "swagger-ui-bundle.js")))).toBe(true);
  });

  test("nothing else of the package, and nothing outside it", async () => {
    for (const path of ["/docs/package.json", "/docs/LICENSE", "/docs/%2e%2e%2fpackage.json", "/docs/..%2f..%2fpackage.json", "/docs/nope.js"]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as Obj).error.code).toBe("NOT_FOUND");
    }
    expect((await fetch(`${base}/v1/replications`)).status).toBe(418); // not ours: left to the REST handler
  });
});

// The request fields a route takes from the query string: none with body
// "*"; else every field outside the path and the body that restQueryToJson
// resolves (nested messages by dotted path).
function queryFields(route: RestRoute): string[] {
  if (route.body === "*") return [];
  const skip = new Set([...route.variables, route.body]);
  const walk = (message: DescMessage, prefix: string): string[] =>
    message.fields.flatMap((field) => {
      if (!prefix && skip.has(field.name)) return [];
      if (field.oneof && restUnion(field.oneof)) return [];
      const name = prefix + restFieldName(field);
      if (field.fieldKind === "map" || (field.fieldKind === "list" && field.listKind === "message")) return [];
      if (field.fieldKind === "message") {
        if (!isWellKnown(field.message)) return walk(field.message, `${name}.`);
        return ["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"].includes(field.message.typeName) ? [name] : [];
      }
      return [name];
    });
  return walk(route.method.input, "");
}

// A valid query value for a parameter schema.
function sample(schema: Obj): string {
  if (schema.$ref) return (resolve(schema.$ref as string).enum as string[])[0]!;
  if (schema.format === "date-time") return "2025-11-02T10:00:00Z";
  if (schema.type === "integer" || schema.type === "number") return "1";
  if (schema.type === "boolean") return "true";
  return "x";
}

function resolve(ref: string): Obj {
  return ref
    .slice(2)
    .split("/")
    .reduce<Obj>((node, key) => node[key.replaceAll("~1", "/")], doc);
}
