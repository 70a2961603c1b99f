// The REST routes every REST surface derives from google.api.http: which
// RPCs get one, and what their path templates name.
import { create, createFileRegistry, setExtension } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, test } from "vitest";
import { file_google_api_annotations, http } from "../gen/google/api/annotations_pb";
import { HttpRuleSchema } from "../gen/google/api/http_pb";
import { file_heliosdb_replication_v1_rest, rest_success_status } from "../gen/heliosdb/replication/v1/rest_pb";
import { services } from "../services";
import { httpRoutes, pathTemplate, pathVariables } from "./routes";

describe("httpRoutes: the contract's routes", () => {
  const routes = services.flatMap(httpRoutes);
  const table = routes.map((r) => `${r.verb} ${r.template} ${r.method.parent.name}.${r.method.name} ${r.status} [${r.variables}] body=${r.body} response_body=${r.responseBody}`);

  test("ReplicationService: every unary RPC, in declaration order; the streams have none", () => {
    expect(table.filter((r) => r.includes(" ReplicationService."))).toEqual([
      "POST /v1/replications ReplicationService.CreateReplication 201 [] body=* response_body=",
      "GET /v1/replications/{id} ReplicationService.GetReplication 200 [id] body= response_body=",
      "GET /v1/replications ReplicationService.ListReplications 200 [] body= response_body=",
      "PATCH /v1/replications/{id} ReplicationService.UpdateReplication 200 [id] body=* response_body=",
      "DELETE /v1/replications/{id} ReplicationService.DeleteReplication 204 [id] body= response_body=",
      "POST /v1/replications/{id}/start ReplicationService.StartReplication 200 [id] body=* response_body=",
      "POST /v1/replications/{id}/pause ReplicationService.PauseReplication 200 [id] body= response_body=",
      "POST /v1/replications/{id}/stop ReplicationService.StopReplication 200 [id] body= response_body=",
    ]);
  });

  test("a body of one field and a response_body", () => {
    expect(table).toContain("POST /v1/connections ConnectionService.RegisterConnection 201 [] body=connection response_body=connection");
    expect(table).toContain("GET /v1/tenants/{tenant_id}/routing RoutingService.GetTenantRouting 200 [tenant_id] body= response_body=routing");
  });

  test("success statuses from rest_success_status: 202 for the long-running starts", () => {
    expect(routes.filter((r) => r.status === 202).map((r) => r.method.name)).toEqual(["TriggerFailover", "StartMigration", "CutoverMigration"]);
  });

  test("no verb and path twice", () => {
    const keys = routes.map((r) => `${r.verb} ${r.template}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(routes.every((r) => r.method.methodKind === "unary")).toBe(true);
  });
});

describe("httpRoutes: which RPCs get a route", () => {
  // A service with one RPC of each kind, each annotated (but the last).
  const service = testService([
    { name: "Plain", rule: { get: "/v1/things/{id}" } },
    { name: "Created", rule: { post: "/v1/things", body: "*" }, status: 201 },
    { name: "Stream", rule: { get: "/v1/things/{id}/events" }, serverStreaming: true },
    { name: "Custom", rule: { custom: { kind: "HEAD", path: "/v1/things/{id}" } } },
    { name: "Bare" },
  ]);

  test("unary, annotated, not custom", () => {
    expect(httpRoutes(service).map((r) => `${r.verb} ${r.template} ${r.method.name} ${r.status} [${r.variables}]`)).toEqual([
      "GET /v1/things/{id} Plain 200 [id]",
      "POST /v1/things Created 201 []",
    ]);
  });
});

describe("path templates", () => {
  test("variables in order, nested fields dotted", () => {
    expect(pathVariables("/v1/replications")).toEqual([]);
    expect(pathVariables("/v1/replications/{id}/start")).toEqual(["id"]);
    expect(pathVariables("/v1/a/{a_id}/b/{b.id}")).toEqual(["a_id", "b.id"]);
  });

  test("a variable's own pattern is not part of its name", () => {
    expect(pathTemplate("/v1/{name=things/*}:run")).toEqual([{ literal: "/v1/" }, { variable: "name" }, { literal: ":run" }]);
  });

  test("literal text between variables is kept whole", () => {
    expect(pathTemplate("/v1/tenants/{tenant_id}/routing")).toEqual([
      { literal: "/v1/tenants/" },
      { variable: "tenant_id" },
      { literal: "/routing" },
    ]);
  });
});

interface TestMethod {
  name: string;
  /** One verb and its path (or custom), and the body. */
  rule?: { get?: string; post?: string; custom?: { kind: string; path: string }; body?: string };
  status?: number;
  serverStreaming?: boolean;
}

// A service built from a descriptor, as buf would compile it.
function testService(methods: TestMethod[]) {
  const file = create(FileDescriptorProtoSchema, {
    name: "test/routes.proto",
    package: "test",
    syntax: "proto3",
    dependency: ["google/api/annotations.proto", "heliosdb/replication/v1/rest.proto"],
    messageType: [
      {
        name: "Request",
        field: [{ name: "id", number: 1, type: FieldDescriptorProto_Type.STRING, label: FieldDescriptorProto_Label.OPTIONAL, jsonName: "id" }],
      },
      { name: "Response" },
    ],
    service: [
      {
        name: "Things",
        method: methods.map((m) => {
          const options = create(MethodOptionsSchema);
          if (m.rule) {
            const { body, ...pattern } = m.rule;
            const [kind, value] = Object.entries(pattern)[0]!;
            setExtension(options, http, create(HttpRuleSchema, { pattern: { case: kind, value } as never, body: body ?? "" }));
          }
          if (m.status) setExtension(options, rest_success_status, m.status);
          return { name: m.name, inputType: ".test.Request", outputType: ".test.Response", serverStreaming: m.serverStreaming ?? false, options };
        }),
      },
    ],
  });
  const deps = new Map([
    ["google/api/annotations.proto", file_google_api_annotations],
    ["heliosdb/replication/v1/rest.proto", file_heliosdb_replication_v1_rest],
  ]);
  return createFileRegistry(file, (name) => deps.get(name)).getService("test.Things")!;
}
