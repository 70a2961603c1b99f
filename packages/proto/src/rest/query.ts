// Query string → REST JSON, for the GET and DELETE routes whose request
// fields travel as query parameters (`?status=Streaming&page=2`). Values are
// typed by the field they name; fromRest then validates them like a body.
import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { RestMappingError, type FieldViolation } from "./errors";
import { isWellKnown, restFieldName } from "./names";
import { is64Bit } from "./to-rest";

/**
 * Turns query parameters into the REST JSON of a request message. A parameter
 * names a field by its REST name, or a nested field by a dotted path
 * (`source.region`); a repeated field takes the parameter once per element.
 */
export function restQueryToJson(schema: DescMessage, params: Iterable<[string, string]>): JsonObject {
  const json: JsonObject = {};
  const violations: FieldViolation[] = [];
  for (const [name, raw] of params) {
    const field = resolve(schema, name);
    if (typeof field === "string") {
      violations.push({ field: name, description: field });
      continue;
    }
    const keys = name.split(".");
    let target = json;
    for (const key of keys.slice(0, -1)) target = (target[key] ??= {}) as JsonObject;
    const leaf = keys[keys.length - 1]!;
    const value = typed(field, raw);
    if (field.fieldKind === "list") ((target[leaf] ??= []) as JsonValue[]).push(value);
    else if (target[leaf] !== undefined) violations.push({ field: name, description: "given more than once" });
    else target[leaf] = value;
  }
  if (violations.length > 0) throw new RestMappingError(violations);
  return json;
}

// The field a dotted query name points at, or why it points at none.
function resolve(schema: DescMessage, name: string): DescField | string {
  let message: DescMessage | undefined = schema;
  let field: DescField | undefined;
  for (const key of name.split(".")) {
    if (!message) return "not a field that a query parameter can set";
    field = message.fields.find((f) => restFieldName(f) === key);
    if (!field) return "unknown query parameter";
    message = field.fieldKind === "message" && !isWellKnown(field.message) ? field.message : undefined;
  }
  if (!field || field.fieldKind === "map" || message || (field.fieldKind === "list" && field.listKind === "message")) {
    return "not a field that a query parameter can set";
  }
  return field;
}

// A query value as the JSON type of its field; left a string when it does not
// parse, so that fromRest reports the type error with the field's path.
function typed(field: DescField, raw: string): JsonValue {
  const scalar = field.scalar;
  if (scalar === undefined || scalar === ScalarType.STRING || scalar === ScalarType.BYTES) return raw;
  if (scalar === ScalarType.BOOL) return raw === "true" ? true : raw === "false" ? false : raw;
  if (is64Bit(scalar)) return /^-?\d+$/.test(raw) && Number.isSafeInteger(Number(raw)) ? Number(raw) : raw;
  const number = Number(raw);
  return raw.trim() !== "" && Number.isFinite(number) ? number : raw;
}

