// REST JSON → message. The walk checks every value against the descriptor and
// collects every violation with the field's path, then hands canonical proto3
// JSON to protobuf-es. Nothing the client sent is dropped silently.
import {
  fromJson,
  ScalarType,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { childPath, RestMappingError, type FieldViolation } from "./errors";
import { elementKind, isWellKnown, restEnumValue, restEnumValues, restFieldName, restTag, restUnion } from "./names";
import { is64Bit } from "./to-rest";

/**
 * Reads a REST request body (or a query turned into JSON by `fromRestQuery`)
 * into a message. Throws a RestMappingError that names every field it could
 * not map: unknown fields, unknown enum values, wrong JSON types.
 */
export function fromRest<Desc extends DescMessage>(schema: Desc, json: unknown): MessageShape<Desc> {
  const violations: FieldViolation[] = [];
  const protoJson = messageFromRest(schema, json, "", violations);
  if (violations.length > 0) throw new RestMappingError(violations);
  try {
    return fromJson(schema, protoJson);
  } catch (e) {
    // Unreachable when the walk above is complete; kept so no raw error escapes.
    throw new RestMappingError([{ field: "", description: String((e as Error).message) }]);
  }
}

function messageFromRest(desc: DescMessage, json: unknown, path: string, out: FieldViolation[]): JsonValue {
  if (isWellKnown(desc)) return wellKnownFromRest(desc, json, path, out);
  if (!isObject(json)) {
    out.push({ field: path, description: `expected a JSON object, got ${describe(json)}` });
    return null;
  }
  const { byName, unions } = keysOf(desc);
  const result: JsonObject = {};
  const consumed = new Set<string>();
  for (const [typeKey, union] of unions) {
    consumed.add(typeKey).add(union.valueKey);
    const tag = json[typeKey];
    if (tag === undefined || tag === null) {
      if (json[union.valueKey] !== undefined) {
        out.push({ field: childPath(path, typeKey), description: "missing: it says what the value is" });
      }
      continue;
    }
    const field = union.fields.find((f) => restTag(f) === tag);
    if (!field) {
      out.push({
        field: childPath(path, typeKey),
        description: `unknown value ${describe(tag)}; expected one of ${union.fields.map(restTag).join(", ")}`,
      });
      continue;
    }
    result[field.name] = messageFromRest(field.message!, json[union.valueKey] ?? {}, childPath(path, union.valueKey), out);
  }
  for (const [key, value] of Object.entries(json)) {
    if (consumed.has(key)) continue;
    const field = byName.get(key);
    if (!field) {
      out.push({ field: childPath(path, key), description: "unknown field" });
      continue;
    }
    if (value === null) continue; // null means "not set", as in proto3 JSON
    const proto = fieldFromRest(field, value, childPath(path, key), out);
    if (proto !== undefined) result[field.name] = proto;
  }
  return result;
}

interface MessageKeys {
  byName: Map<string, DescField>;
  unions: Map<string, { typeKey: string; valueKey: string; fields: readonly DescField[] }>;
}

// The REST keys of each message type, worked out on its first request.
const keys = new WeakMap<DescMessage, MessageKeys>();

function keysOf(desc: DescMessage): MessageKeys {
  let known = keys.get(desc);
  if (known) return known;
  known = { byName: new Map(), unions: new Map() };
  for (const member of desc.members) {
    const union = member.kind === "oneof" ? restUnion(member) : undefined;
    if (member.kind === "oneof" && union) known.unions.set(union.typeKey, { ...union, fields: member.fields });
    else for (const field of member.kind === "oneof" ? member.fields : [member]) known.byName.set(restFieldName(field), field);
  }
  keys.set(desc, known);
  return known;
}

function fieldFromRest(field: DescField, value: JsonValue, path: string, out: FieldViolation[]): JsonValue | undefined {
  if (field.fieldKind === "list") {
    if (!Array.isArray(value)) {
      out.push({ field: path, description: `expected a JSON array, got ${describe(value)}` });
      return undefined;
    }
    return value.map((item, i) => elementFromRest(field, item, childPath(path, i), out));
  }
  if (field.fieldKind === "map") {
    if (!isObject(value)) {
      out.push({ field: path, description: `expected a JSON object, got ${describe(value)}` });
      return undefined;
    }
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, elementFromRest(field, item, childPath(path, key), out)]),
    );
  }
  return elementFromRest(field, value, path, out);
}

function elementFromRest(field: DescField, value: JsonValue, path: string, out: FieldViolation[]): JsonValue {
  const kind = elementKind(field);
  if (kind === "message") return messageFromRest(field.message!, value, path, out);
  if (kind === "enum") {
    const known = field.enum!.values.find((v) => restEnumValue(v) !== undefined && restEnumValue(v) === value);
    if (!known) {
      const allowed = restEnumValues(field.enum!.values).join(", ");
      out.push({ field: path, description: `unknown value ${describe(value)}; expected one of ${allowed}` });
      return null;
    }
    return known.name;
  }
  const problem = scalarProblem(field.scalar!, value);
  if (problem) out.push({ field: path, description: `${problem}, got ${describe(value)}` });
  return value;
}

// Why a JSON value does not fit a scalar type, or undefined when it does.
function scalarProblem(scalar: ScalarType, value: JsonValue): string | undefined {
  switch (scalar) {
    case ScalarType.STRING:
      return typeof value === "string" ? undefined : "expected a string";
    case ScalarType.BYTES:
      return typeof value === "string" && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value) ? undefined : "expected base64 text";
    case ScalarType.BOOL:
      return typeof value === "boolean" ? undefined : "expected true or false";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return typeof value === "number" && Number.isFinite(value) ? undefined : "expected a number";
  }
  if (is64Bit(scalar)) {
    const unsigned = scalar === ScalarType.UINT64 || scalar === ScalarType.FIXED64;
    if (typeof value === "string") {
      if (!(unsigned ? /^\d+$/ : /^-?\d+$/).test(value)) return "expected an integer";
      const big = BigInt(value);
      const [min, max] = unsigned ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
      return big >= min && big <= max ? undefined : "out of range for a 64-bit integer";
    }
    if (typeof value !== "number" || !Number.isInteger(value)) return "expected an integer";
    if (!Number.isSafeInteger(value)) return "too large for a JSON number: send it as a decimal string";
    return unsigned && value < 0 ? "expected an integer of at least 0" : undefined;
  }
  if (typeof value !== "number" || !Number.isInteger(value)) return "expected an integer";
  const unsigned = scalar === ScalarType.UINT32 || scalar === ScalarType.FIXED32;
  const [min, max] = unsigned ? [0, 2 ** 32 - 1] : [-(2 ** 31), 2 ** 31 - 1];
  return value >= min && value <= max ? undefined : `out of range (${min} to ${max})`;
}

const wellKnownForms: Record<string, string> = {
  "google.protobuf.Timestamp": "an RFC 3339 timestamp such as 2025-11-02T10:00:00Z",
  "google.protobuf.Duration": 'a duration such as "1.5s"',
  "google.protobuf.FieldMask": 'a comma-separated list of field paths such as "config.priority"',
  "google.protobuf.Struct": "a JSON object",
};

// Well-known types keep their proto3 JSON form; protobuf-es is their judge.
function wellKnownFromRest(desc: DescMessage, json: unknown, path: string, out: FieldViolation[]): JsonValue {
  try {
    fromJson(desc, json as JsonValue);
  } catch {
    const form = wellKnownForms[desc.typeName] ?? `a ${desc.name} in proto3 JSON`;
    out.push({ field: path, description: `expected ${form}, got ${describe(json)}` });
  }
  return json as JsonValue;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}
