// Message → REST JSON: canonical proto3 JSON (protobuf-es) reshaped into the
// spec's form by the rules of names.ts. Output is never validated: it comes
// from a message, which is already well-typed.
import {
  ScalarType,
  toJson,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { elementKind, isWellKnown, restEnumValue, restFieldName, restTag, restUnion } from "./names";

/**
 * Renders a message as the REST API's JSON. Fields without presence are
 * always written (status Initializing and qos_tier BestEffort are zero
 * values the client must see); fields with presence only when set.
 */
export function toRest<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonObject {
  const json = toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true });
  return messageToRest(schema, json as JsonObject);
}

function messageToRest(desc: DescMessage, json: JsonObject): JsonObject {
  if (isWellKnown(desc)) return json;
  const out: JsonObject = {};
  for (const member of desc.members) {
    const union = member.kind === "oneof" ? restUnion(member) : undefined;
    if (member.kind === "oneof" && union) {
      const set = member.fields.find((f) => json[f.name] !== undefined);
      if (set) {
        out[union.typeKey] = restTag(set);
        out[union.valueKey] = messageToRest(set.message!, json[set.name] as JsonObject);
      }
      continue;
    }
    for (const field of member.kind === "oneof" ? member.fields : [member]) {
      const value = json[field.name];
      if (value === undefined) continue;
      const rest = valueToRest(field, value);
      if (rest !== undefined) out[restFieldName(field)] = rest;
    }
  }
  return out;
}

function valueToRest(field: DescField, value: JsonValue): JsonValue | undefined {
  switch (field.fieldKind) {
    case "list":
      return (value as JsonValue[]).map((item) => elementToRest(field, item)!);
    case "map":
      return Object.fromEntries(
        Object.entries(value as JsonObject).map(([key, item]) => [key, elementToRest(field, item)!]),
      );
    default:
      return elementToRest(field, value);
  }
}

// One value of a field, or one element of a list or map field.
function elementToRest(field: DescField, value: JsonValue): JsonValue | undefined {
  const kind = elementKind(field);
  if (kind === "message") return messageToRest(field.message!, value as JsonObject);
  if (kind === "enum") {
    const known = typeof value === "string" ? field.enum!.values.find((v) => v.name === value) : undefined;
    return known ? restEnumValue(known) : value;
  }
  if (typeof value === "string" && is64Bit(field.scalar!)) {
    const number = Number(value);
    // A JSON number beyond 2^53 loses digits in most parsers: keep the string.
    return Number.isSafeInteger(number) ? number : value;
  }
  return value;
}

export function is64Bit(scalar: ScalarType): boolean {
  return (
    scalar === ScalarType.INT64 ||
    scalar === ScalarType.UINT64 ||
    scalar === ScalarType.SINT64 ||
    scalar === ScalarType.FIXED64 ||
    scalar === ScalarType.SFIXED64
  );
}
