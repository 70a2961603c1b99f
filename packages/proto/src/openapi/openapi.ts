// The OpenAPI 3.1 document of the REST API, built from the service
// descriptors and their comments, by the same rules as the REST layer:
// routes from google.api.http (../rest/routes, as the server's restRoutes
// reads them), JSON names, enum spellings and tagged unions from ../rest/names,
// the §6 error envelope for every error, at the statuses of ../error-codes. The
// comments are only in a protoc plugin's request, so plugin.ts runs this at
// `buf generate` time; the result is packages/server/openapi/openapi.yaml.
import {
  getOption,
  hasOption,
  ScalarType,
  type AnyDesc,
  type DescEnum,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescOneof,
} from "@bufbuild/protobuf";
import { errorCodes, errorCodesOf, ERROR_CODES, type ErrorCode } from "../error-codes";
import { FieldBehavior, field_behavior } from "../gen/google/api/field_behavior_pb";
import type { HttpRule } from "../gen/google/api/http_pb";
import { httpRoutes, type HttpRoute } from "../rest/routes";
import { elementKind, isUuid, isWellKnown, restEnumValue, restFieldName, restTag, restUnion } from "../rest/names";
import { pagingBounds } from "../pagination";
import { is64Bit } from "../rest/to-rest";

/** A JSON value of the document. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface OpenApiOptions {
  /** The comment of an element, as protoc's source info holds it (leading comment). */
  comment: (desc: Exclude<AnyDesc, DescFile>) => string | undefined;
  /**
   * Services (`pkg.Service`) or methods (`pkg.Service.Method`) that need no
   * credentials; every other operation needs a bearer token.
   */
  public?: readonly string[];
  /** The message of the REST error body (spec §6.1); default heliosdb.replication.v1.ErrorResponse. */
  errorResponse?: string;
  /** info.version; default "v1". */
  version?: string;
}

/** The error statuses of spec §6 an operation documents, and when each applies. */
export interface ErrorStatus {
  status: string;
  /** The components/responses key. */
  name: string;
  /** The §6 codes answered with this status (from ERROR_CODES). */
  codes: ErrorCode[];
  description: string;
  applies: (op: OperationFacts) => boolean;
}

/** What decides which error statuses an operation can answer. */
export interface OperationFacts {
  verb: string;
  secured: boolean;
  pathVariables: string[];
  public: boolean;
}

// Every error leaves in the §6 envelope (ErrorResponse) with one of these
// statuses; which codes each answers comes from ERROR_CODES, the server's
// own table.
export const ERROR_STATUSES: ErrorStatus[] = [
  {
    status: "400",
    name: "BadRequest",
    codes: errorCodesOf(400),
    description:
      "INVALID_REQUEST: the request does not fit the API (malformed JSON, unknown fields or query parameters, wrong types, unknown enum values; `details.violations` lists every one with its field). VALIDATION_ERROR: the request fits the API but its values are refused (`details` names the fields).",
    applies: () => true,
  },
  {
    status: "401",
    name: "Unauthorized",
    codes: errorCodesOf(401),
    description: "UNAUTHORIZED: no bearer token, or one that is invalid or expired.",
    applies: (op) => op.secured,
  },
  {
    status: "403",
    name: "Forbidden",
    codes: errorCodesOf(403),
    description: "FORBIDDEN: the token does not grant the permission this operation needs (`details.required_permission`).",
    applies: (op) => op.secured,
  },
  {
    status: "404",
    name: "NotFound",
    codes: errorCodesOf(404),
    description: "NOT_FOUND: the resource the path names does not exist, or belongs to a tenant the token is not bound to.",
    applies: (op) => op.pathVariables.length > 0,
  },
  {
    status: "409",
    name: "Conflict",
    codes: errorCodesOf(409),
    description:
      "CONFLICT: the resource's state does not allow the change (e.g. a delete while it is in use), or the `Idempotency-Key` was used with a different request or its first request is still running.",
    applies: (op) => op.verb !== "GET",
  },
  {
    status: "422",
    name: "UnprocessableEntity",
    codes: errorCodesOf(422),
    description:
      "REPLICATION_LAG_EXCEEDED: the replica is too far behind for the operation. FAILOVER_IN_PROGRESS: a failover of the replication is running.",
    applies: (op) => op.verb !== "GET" && op.pathVariables.length > 0,
  },
  {
    status: "500",
    name: "InternalError",
    codes: errorCodesOf(500),
    description: "INTERNAL_ERROR: the server failed; the error is logged under the request id, and the message holds no internals.",
    applies: () => true,
  },
  {
    status: "503",
    name: "ServiceUnavailable",
    codes: errorCodesOf(503),
    description: "SERVICE_UNAVAILABLE: a health check failed, or the server is not ready yet; `details` holds the checks.",
    applies: (op) => op.public,
  },
];

const DEFAULT_ERROR =
  "Any other error, in the same envelope: 405 METHOD_NOT_ALLOWED (another method of this path), 408 REQUEST_TIMEOUT (the request did not arrive within the server's request timeout), 413 PAYLOAD_TOO_LARGE (a body over the server's limit, 1 MiB by default: `details.max_body_bytes`), 415 UNSUPPORTED_MEDIA_TYPE (a body that is not `application/json`), 429 RATE_LIMIT_EXCEEDED (spec §7: over the caller's bucket, with a `Retry-After` header and `retry_after_seconds`; every rate-limited call answers `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`), 431 HEADERS_TOO_LARGE (request line and headers over the server's limit), 501 UNIMPLEMENTED (an RPC that a later milestone implements: `details.milestone` names it).";

// The codes at a status no operation lists: under `default`, by name.
const DEFAULT_ERROR_CODES = errorCodes.filter((code) => !ERROR_STATUSES.some((e) => e.status === String(ERROR_CODES[code].http))).sort();

const ERROR_EXAMPLES: Record<string, JsonObject> = {
  "400": {
    code: "INVALID_REQUEST",
    message: "the request does not fit the API",
    details: {
      violations: [
        { field: "config.qos_tier", description: 'unknown value "Gold"; expected one of BestEffort, Standard, Premium, Synchronous' },
      ],
    },
  },
  "401": { code: "UNAUTHORIZED", message: "missing credentials: send Authorization: Bearer <token>", details: {} },
  "403": { code: "FORBIDDEN", message: "this call needs the permission replication:create", details: { required_permission: "replication:create" } },
  "404": { code: "NOT_FOUND", message: "no replication 650e8400-e29b-41d4-a716-446655440003", details: {} },
  "409": { code: "CONFLICT", message: "this Idempotency-Key was used with a different request", details: { idempotency_key: "3f1c…" } },
  "422": { code: "FAILOVER_IN_PROGRESS", message: "a failover of this replication is in progress", details: {} },
  "500": { code: "INTERNAL_ERROR", message: "the server failed to handle the request; it has been logged", details: {} },
  "503": { code: "SERVICE_UNAVAILABLE", message: "a health check failed", details: { database: "Unhealthy", status: "Unhealthy" } },
};

const API_DESCRIPTION = `The REST API of HeliosDB Tenant Replication: one tenant's data replicated, failed over or migrated live between PostgreSQL databases. The same API is served over gRPC, gRPC-web and Connect; this document covers its JSON REST form, generated from the protobuf contract (\`proto/heliosdb/replication/v1\`) and its comments.

The JSON follows the rules of \`docs/rest-mapping.md\`:

- Field names are the proto names (\`snake_case\`), except where a field declares a \`json_name\` (list responses are \`{"data": [...], "pagination": {...}}\`).
- Fields without presence (plain scalars, enums, lists, maps) are always written, zero values included; fields with presence (messages, \`optional\` scalars) only when set. In a request, \`null\` means "not set".
- Enum values are strings in the spec's spelling (\`"BestEffort"\`, \`"asc"\`, \`"1m"\`); an enum's unset value is never written and cannot be sent.
- A transform is a tagged object: \`{"type": "AnonymizePII", "config": {...}}\`.
- 64-bit integers are JSON numbers; a value beyond 2^53 is written as a decimal string, and input accepts a number up to 2^53 or a decimal string.
- Timestamps are RFC 3339 strings in UTC; a field mask is \`"config.priority,config.qos_tier"\`.
- Input is checked completely: unknown fields, unknown enum values and wrong types are errors (400 INVALID_REQUEST listing every violation), never dropped.
- PATCH changes exactly the fields present in the body.

Every error is answered with the envelope \`{"error": {"code", "message", "details", "request_id", "timestamp"}}\` (spec §6). Every response carries an \`X-Request-Id\` header. Requests that create or change something accept an \`Idempotency-Key\` header.`;

const INT64_NOTE = "(64-bit: a JSON number, or a decimal string beyond 2^53.)";

const REF = "#/components/schemas/";

/** The OpenAPI 3.1 document of every google.api.http route of the services in `files`. */
export function buildOpenApi(files: readonly DescFile[], options: OpenApiOptions): JsonObject {
  return new Builder(options).build(files);
}

/** A path template as an OpenAPI path: `{name=pattern}` → `{name}`. */
export function openApiPath(template: string): string {
  return template.replace(/\{([^}=]+)=[^}]*\}/g, "{$1}");
}

/** The operationId of a method. */
export function operationId(method: DescMethod): string {
  return `${method.parent.name}_${method.name}`;
}

class Builder {
  private readonly schemas = new Map<string, JsonObject>();
  private readonly pending: (DescMessage | DescEnum)[] = [];
  private readonly named = new Map<string, string>();

  // The REST error body's message (ErrorResponse), found by build().
  private errorMessage!: DescMessage;

  constructor(private readonly options: OpenApiOptions) {}

  build(files: readonly DescFile[]): JsonObject {
    const envelope = this.options.errorResponse ?? "heliosdb.replication.v1.ErrorResponse";
    const found = files.flatMap((f) => [...nestedMessages(f.messages)]).find((m) => m.typeName === envelope);
    if (!found) throw new Error(`the error envelope ${envelope} is not among the files`);
    this.errorMessage = found;
    const paths: JsonObject = {};
    const tags: JsonObject[] = [];
    // Sorted by name, so that the document does not depend on the order of
    // the files in the request.
    const services = files.flatMap((f) => f.services).sort((a, b) => compare(a.name, b.name));
    for (const service of services) {
      const methods = httpRoutes(service);
      if (methods.length === 0) continue;
      const restless = service.methods.filter((m) => !methods.some((r) => r.method === m)).map((m) => `\`${m.name}\``);
      const description = this.text(service) + (restless.length ? `\n\nOver gRPC, gRPC-web and Connect only: ${restless.join(", ")}.` : "");
      tags.push({ name: service.name, description });
      for (const route of methods) {
        const path = openApiPath(route.template);
        const item = (paths[path] ??= {}) as JsonObject;
        item[route.verb.toLowerCase()] = this.operation(route);
      }
    }
    const sortedPaths: JsonObject = {};
    for (const path of Object.keys(paths).sort(compare)) sortedPaths[path] = paths[path]!;
    const responses: JsonObject = {};
    for (const error of ERROR_STATUSES) responses[error.name] = this.errorResponse(error.description, error.codes, ERROR_EXAMPLES[error.status]);
    responses.Error = this.errorResponse(DEFAULT_ERROR, DEFAULT_ERROR_CODES);
    this.drain();
    const schemas: JsonObject = {};
    for (const name of [...this.schemas.keys()].sort()) schemas[name] = this.schemas.get(name)!;
    return {
      openapi: "3.1.0",
      info: {
        title: "HeliosDB Tenant Replication API",
        version: this.options.version ?? "v1",
        description: API_DESCRIPTION,
        license: { name: "Apache-2.0", identifier: "Apache-2.0" },
      },
      servers: [{ url: "/", description: "The server that serves this document." }],
      tags,
      paths: sortedPaths,
      components: {
        schemas,
        responses,
        parameters: {
          "Idempotency-Key": {
            name: "Idempotency-Key",
            in: "header",
            required: false,
            description:
              "Makes a retry safe: the same key with the same request answers the first response again (with `Idempotent-Replayed: true`) instead of doing the work twice; the same key with another request is a 409 CONFLICT. At most 255 characters; scoped to the caller.",
            schema: { type: "string", maxLength: 255 },
          },
        },
        headers: {
          "X-Request-Id": {
            description: "The request's id: the client's own `X-Request-Id` when it sent one, else one the server made. Errors repeat it as `request_id`.",
            schema: { type: "string" },
          },
          "Idempotent-Replayed": {
            description: "`true` when the response is the stored answer to an earlier request with the same `Idempotency-Key`.",
            schema: { type: "string", enum: ["true"] },
          },
        },
        securitySchemes: {
          bearerAuth: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "JWT",
            description:
              "A JWT (spec §5.1: HS256, RS256 or ES256; `iss`, `aud`, `exp` required) whose `roles` (Admin, Operator, Viewer) or `permissions` grant the operation's permission; a `tenant_id` claim binds it to one tenant. The server's own tokens (issuer `heliosdb.com`, audience `heliosdb-api`; public keys at `/.well-known/jwks.json`) are printed by `heliosdb-replication-server token`; configured identity providers' tokens are accepted too.",
          },
          apiKeyAuth: {
            type: "apiKey",
            in: "header",
            name: "X-API-Key",
            description: "An API key (spec §5.2), made by `POST /v1/api-keys` and shown once: its tenant, roles or permissions and tier are the key's. Send either this header or a bearer token, not both.",
          },
        },
      },
    };
  }

  // An error status's response: the §6 envelope, with an example.
  private errorResponse(description: string, codes: string[], example?: JsonObject): JsonObject {
    const media: JsonObject = { schema: this.messageRef(this.errorMessage) };
    if (example) {
      media.example = { error: { ...example, request_id: "req-3f6c1a52-8d4e-4b1e-9a57-2c0d8e9b7f41", timestamp: "2025-11-02T10:00:00Z" } };
    }
    return {
      description,
      headers: { "X-Request-Id": { $ref: "#/components/headers/X-Request-Id" } },
      content: { "application/json": media },
      // The §6 codes this response carries, for tools (and the server's tests).
      "x-error-codes": codes,
    };
  }

  private operation(route: HttpRoute): JsonObject {
    const { method, rule, verb, variables, status } = route;
    const name = `${method.parent.typeName}.${method.name}`;
    const isPublic = (this.options.public ?? []).some((p) => p === method.parent.typeName || p === name);
    // The Idempotency-Key interceptor applies to what creates or changes something.
    const takesIdempotencyKey = verb !== "GET";
    const description = this.text(method);
    const parameters: JsonObject[] = [];
    for (const variable of variables) {
      const field = fieldAt(method.input, variable);
      if (!field) throw new Error(`${name}: path variable {${variable}} names no field of ${method.input.typeName}`);
      parameters.push({
        name: variable,
        in: "path",
        required: true,
        description: this.text(field),
        schema: this.valueSchema(field),
      });
    }
    if (rule.body !== "*") {
      const skip = new Set([...variables, ...(rule.body ? [rule.body] : [])]);
      parameters.push(...this.queryParameters(method.input, "", skip, new Set()));
    }
    if (takesIdempotencyKey) parameters.push({ $ref: "#/components/parameters/Idempotency-Key" });

    const op: JsonObject = {
      operationId: operationId(method),
      tags: [method.parent.name],
      summary: firstSentence(description),
      description: verb === "PATCH" && method.input.fields.some((f) => f.name === "update_mask")
        ? `${description}\n\nOnly the fields present in the body change: without \`update_mask\`, the server derives it from them (\`{"config": {"priority": 95}}\` changes \`config.priority\` alone). An empty object changes nothing; \`null\` resets a whole message.`
        : description,
    };
    if (parameters.length) op.parameters = parameters;
    const body = this.requestBody(method, rule, variables);
    if (body) op.requestBody = body;

    const responses: JsonObject = {};
    const headers: JsonObject = { "X-Request-Id": { $ref: "#/components/headers/X-Request-Id" } };
    if (takesIdempotencyKey) headers["Idempotent-Replayed"] = { $ref: "#/components/headers/Idempotent-Replayed" };
    if (status === 204) {
      responses["204"] = { description: "Done: no content.", headers };
    } else {
      let schema: JsonObject;
      let what: string;
      if (rule.responseBody) {
        const field = method.output.fields.find((f) => f.name === rule.responseBody);
        if (!field) throw new Error(`${name}: response_body "${rule.responseBody}" names no field of ${method.output.typeName}`);
        schema = this.valueSchema(field);
        what = this.text(field) || this.text(field.message ?? field.enum ?? field);
      } else {
        schema = this.messageRef(method.output);
        what = this.text(method.output);
      }
      responses[String(status)] = { description: what || "Success.", headers, content: { "application/json": { schema } } };
    }
    const facts: OperationFacts = { verb, secured: !isPublic, pathVariables: variables, public: isPublic };
    for (const error of ERROR_STATUSES) if (error.applies(facts)) responses[error.status] = { $ref: `#/components/responses/${error.name}` };
    responses.default = { $ref: "#/components/responses/Error" };
    op.responses = responses;
    op.security = isPublic ? [] : [{ bearerAuth: [] }, { apiKeyAuth: [] }];
    return op;
  }

  // body "*": the request minus the path's fields; body "<field>": that field.
  private requestBody(method: DescMethod, rule: HttpRule, variables: string[]): JsonObject | undefined {
    if (!rule.body) return undefined;
    if (rule.body === "*") {
      const omit = new Set(variables.filter((v) => !v.includes(".")));
      const hasRequired = method.input.fields.some((f) => !omit.has(f.name) && behaviors(f).includes(FieldBehavior.REQUIRED));
      const schema = omit.size === 0 ? this.messageRef(method.input) : this.messageSchema(method.input, omit);
      return { required: hasRequired, content: { "application/json": { schema } } };
    }
    const field = method.input.fields.find((f) => f.name === rule.body);
    if (!field) throw new Error(`${method.parent.typeName}.${method.name}: body "${rule.body}" names no field of ${method.input.typeName}`);
    return {
      description: this.text(field),
      required: behaviors(field).includes(FieldBehavior.REQUIRED),
      content: { "application/json": { schema: this.valueSchema(field) } },
    };
  }

  // The request fields a query string can set, by REST name (nested ones by
  // dotted path), as the server's restQueryToJson resolves them.
  private queryParameters(message: DescMessage, prefix: string, skip: Set<string>, seen: Set<string>): JsonObject[] {
    if (seen.has(message.typeName)) return [];
    const inner = new Set(seen).add(message.typeName);
    const out: JsonObject[] = [];
    for (const field of message.fields) {
      if (!prefix && skip.has(field.name)) continue;
      if (field.oneof && restUnion(field.oneof)) continue; // set through {type, config} only
      const name = prefix + restFieldName(field);
      if (field.fieldKind === "map" || (field.fieldKind === "list" && field.listKind === "message")) continue;
      if (field.fieldKind === "message") {
        if (!isWellKnown(field.message)) {
          out.push(...this.queryParameters(field.message, `${name}.`, skip, inner));
          continue;
        }
        if (!SCALAR_LIKE_WKT.has(field.message.typeName)) continue;
      }
      const bounds = !prefix && isListRequest(message) ? pagingBounds(field.name) : undefined;
      const param: JsonObject = { name, in: "query", description: this.text(field), schema: { ...this.valueSchema(field), ...bounds } };
      if (field.fieldKind === "list") Object.assign(param, { style: "form", explode: true });
      out.push(param);
    }
    return out;
  }

  // ---- schemas ----

  private messageRef(message: DescMessage): JsonObject {
    if (isWellKnown(message)) return wellKnownSchema(message);
    return { $ref: REF + this.nameOf(message) };
  }

  private enumRef(desc: DescEnum): JsonObject {
    return { $ref: REF + this.nameOf(desc) };
  }

  // The component name of a message or enum: its name within its package
  // (nested types dotted: AnonymizePIITransform.AnonymizationMethod).
  private nameOf(desc: DescMessage | DescEnum): string {
    const pkg = desc.file.proto.package;
    const name = pkg && desc.typeName.startsWith(`${pkg}.`) ? desc.typeName.slice(pkg.length + 1) : desc.typeName;
    const owner = this.named.get(name);
    if (owner === undefined) {
      this.named.set(name, desc.typeName);
      this.pending.push(desc);
    } else if (owner !== desc.typeName) {
      throw new Error(`schema name ${name} is taken by both ${owner} and ${desc.typeName}`);
    }
    return name;
  }

  private drain(): void {
    for (let desc = this.pending.shift(); desc; desc = this.pending.shift()) {
      const name = this.nameOf(desc);
      if (this.schemas.has(name)) continue;
      if (desc.kind === "enum") {
        this.schemas.set(name, this.enumSchema(desc));
      } else {
        this.schemas.set(name, {}); // reserves the name for recursive messages
        this.schemas.set(name, this.messageSchema(desc, new Set(), name));
      }
    }
  }

  private enumSchema(desc: DescEnum): JsonObject {
    const lines: string[] = [];
    const values: string[] = [];
    for (const value of desc.values) {
      const rest = restEnumValue(value);
      const comment = this.text(value);
      // The unset value has no spelling: the field is absent.
      if (rest === undefined) lines.push(`- *(absent)*: ${comment.replace(/^Unset[:.]\s*/i, "")}`);
      else {
        values.push(rest);
        lines.push(`- \`${rest}\`${comment ? `: ${comment}` : ""}`);
      }
    }
    return { type: "string", description: [this.text(desc), lines.join("\n")].filter(Boolean).join("\n\n"), enum: values };
  }

  /**
   * A message as a JSON object. `omit` drops top-level fields (a body's path
   * fields); `name` is the component's own name, for the variants of a
   * tagged union.
   */
  private messageSchema(message: DescMessage, omit: Set<string>, name?: string): JsonObject {
    const properties: JsonObject = {};
    const required: string[] = [];
    const unions: { oneof: DescOneof; typeKey: string; valueKey: string }[] = [];
    for (const member of message.members) {
      const union = member.kind === "oneof" ? restUnion(member) : undefined;
      if (member.kind === "oneof" && union) {
        unions.push({ oneof: member, ...union });
        const tags = member.fields.map(restTag);
        properties[union.typeKey] = {
          type: "string",
          description: `${this.text(member)} Names the member that \`${union.valueKey}\` holds.`.trim(),
          enum: tags,
        };
        properties[union.valueKey] = {
          description: `The settings of the member \`${union.typeKey}\` names: ${member.fields
            .map((f) => `${restTag(f)} → ${f.message ? this.nameOf(f.message) : f.name}`)
            .join(", ")}.`,
        };
        required.push(union.typeKey);
        continue;
      }
      for (const field of member.kind === "oneof" ? member.fields : [member]) {
        if (omit.has(field.name)) continue;
        const key = restFieldName(field);
        properties[key] = this.fieldSchema(field);
        if (behaviors(field).includes(FieldBehavior.REQUIRED)) required.push(key);
      }
    }
    const schema: JsonObject = { type: "object" };
    const description = this.text(message);
    if (description) schema.description = description;
    schema.properties = properties;
    if (required.length) schema.required = required;
    schema.additionalProperties = false;
    const variants = unions.map((u) => this.unionVariants(message, u, name ?? this.nameOf(message)));
    if (variants.length === 1) Object.assign(schema, variants[0]);
    else if (variants.length > 1) schema.allOf = variants;
    return schema;
  }

  // oneOf + discriminator over one component per member: {type: <tag>, config: <member>}.
  private unionVariants(message: DescMessage, union: { oneof: DescOneof; typeKey: string; valueKey: string }, owner: string): JsonObject {
    const oneOf: JsonObject[] = [];
    const mapping: JsonObject = {};
    for (const field of union.oneof.fields) {
      const tag = restTag(field);
      const variant = `${owner}-${tag}`;
      const ref = REF + variant;
      if (this.named.has(variant)) throw new Error(`schema name ${variant} is taken (${message.typeName})`);
      this.schemas.set(variant, {
        type: "object",
        title: tag,
        description: this.text(field),
        properties: {
          [union.typeKey]: { const: tag },
          [union.valueKey]: field.message ? this.messageRef(field.message) : this.valueSchema(field),
        },
        required: [union.typeKey],
      });
      oneOf.push({ $ref: ref });
      mapping[tag] = ref;
    }
    return { oneOf, discriminator: { propertyName: union.typeKey, mapping } };
  }

  // A field's schema with its description and field_behavior.
  private fieldSchema(field: DescField): JsonObject {
    const { description: own, ...schema } = this.valueSchema(field);
    const description = [this.text(field), own, elementKind(field) === "scalar" && is64Bit(field.scalar!) ? INT64_NOTE : ""]
      .filter(Boolean)
      .join(" ");
    if (description) schema.description = description;
    const behavior = behaviors(field);
    if (behavior.includes(FieldBehavior.OUTPUT_ONLY)) schema.readOnly = true;
    if (behavior.includes(FieldBehavior.INPUT_ONLY)) schema.writeOnly = true;
    return schema;
  }

  // The schema of a field's value: of the field itself, a list or a map.
  private valueSchema(field: DescField): JsonObject {
    switch (field.fieldKind) {
      case "list":
        return { type: "array", items: this.elementSchema(field) };
      case "map":
        return { type: "object", additionalProperties: this.elementSchema(field) };
      default:
        return this.elementSchema(field);
    }
  }

  private elementSchema(field: DescField): JsonObject {
    const kind = elementKind(field);
    if (kind === "message") return this.messageRef(field.message!);
    if (kind === "enum") return this.enumRef(field.enum!);
    return isUuid(field) ? { ...scalarSchema(field.scalar!), format: "uuid" } : scalarSchema(field.scalar!);
  }

  // A comment as a description: lines of a paragraph joined, paragraphs kept.
  private text(desc: Exclude<AnyDesc, DescFile>): string {
    return unwrap(this.options.comment(desc) ?? "");
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function* nestedMessages(messages: readonly DescMessage[]): Generator<DescMessage> {
  for (const message of messages) {
    yield message;
    yield* nestedMessages(message.nestedMessages);
  }
}

// A List request (ListReplicationsRequest…): its page and page_size have the spec's bounds.
function isListRequest(message: DescMessage): boolean {
  return /^List\w+Request$/.test(message.name) && message.fields.some((f) => f.name === "page_size");
}

function behaviors(field: DescField): FieldBehavior[] {
  return hasOption(field, field_behavior) ? getOption(field, field_behavior) : [];
}

// A (possibly dotted) field path of a message.
function fieldAt(message: DescMessage, path: string): DescField | undefined {
  let current: DescMessage | undefined = message;
  let field: DescField | undefined;
  for (const name of path.split(".")) {
    field = current?.fields.find((f) => f.name === name);
    current = field?.fieldKind === "message" ? field.message : undefined;
  }
  return field;
}

function scalarSchema(scalar: ScalarType): JsonObject {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "integer", format: "uint64", minimum: 0 };
    default:
      return { type: "integer", format: "int64" };
  }
}

// Well-known types that a query parameter can carry: their proto3 JSON
// accepts the string a query value stays (BoolValue's does not).
const SCALAR_LIKE_WKT = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.StringValue",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.FloatValue",
  "google.protobuf.DoubleValue",
  "google.protobuf.BytesValue",
]);

// Well-known types keep their proto3 JSON form.
function wellKnownSchema(message: DescMessage): JsonObject {
  switch (message.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$" };
    case "google.protobuf.FieldMask":
      return { type: "string", description: "Comma-separated field paths, e.g. `config.priority,config.qos_tier`." };
    case "google.protobuf.Struct":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.ListValue":
      return { type: "array" };
    case "google.protobuf.Value":
      return {};
    case "google.protobuf.Empty":
      return { type: "object", additionalProperties: false };
    case "google.protobuf.StringValue":
      return { type: "string" };
    case "google.protobuf.BoolValue":
      return { type: "boolean" };
    case "google.protobuf.BytesValue":
      return { type: "string", contentEncoding: "base64" };
    case "google.protobuf.DoubleValue":
    case "google.protobuf.FloatValue":
      return { type: "number" };
    case "google.protobuf.Int32Value":
    case "google.protobuf.UInt32Value":
      return { type: "integer", format: "int32" };
    case "google.protobuf.Int64Value":
    case "google.protobuf.UInt64Value":
      return { type: "integer", format: "int64" };
    default:
      return { type: "object" };
  }
}

export function unwrap(comment: string): string {
  return comment
    .split(/\n[ \t]*\n/)
    .map((paragraph) =>
      paragraph
        .split("\n")
        .map((line) => line.trim())
        .filter(Boolean)
        .join(" "),
    )
    .filter(Boolean)
    .join("\n\n");
}

// The first sentence of a description, for an operation's summary.
export function firstSentence(text: string): string {
  const paragraph = text.split("\n\n")[0] ?? "";
  const end = paragraph.search(/(?<!\b(?:e\.g|i\.e))\.(\s|$)/);
  return end < 0 ? paragraph : paragraph.slice(0, end + 1);
}
