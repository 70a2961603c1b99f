// Message → REST JSON: canonical proto3 JSON (protobuf-es) reshaped into the
// spec's form by the rules of names.ts. Output is never validated: it comes
// from a message, which is already well-typed. The names and enum spellings
// of each message type are worked out once, on its first answer, not for
// every field of every answer.
import {
  ScalarType,
  toJson,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { elementKind, isInputOnly, isWellKnown, restEnumValue, restFieldName, restTag, restUnion } from "./names";

/**
 * Renders a message as the REST API's JSON. Fields without presence are
 * always written (status Initializing and qos_tier BestEffort are zero
 * values the client must see); fields with presence only when set.
 */
export function toRest<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonObject {
  const json = toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true });
  return messageToRest(schema, json as JsonObject, "answer");
}

/**
 * Renders a request message as a client sends it in REST JSON (the SDK's
 * REST transport): the fields that are set only, and INPUT_ONLY ones
 * (passwords, secrets) included — an answer never carries those.
 */
export function toRestRequest<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonObject {
  const json = toJson(schema, message, { useProtoFieldName: true });
  return messageToRest(schema, json as JsonObject, "request");
}

/** Which JSON: an answer of the server's (no INPUT_ONLY field), or a request (with them). */
type Direction = "answer" | "request";

/** How one field's proto3 JSON becomes REST JSON. */
interface FieldPlan {
  /** Its key in proto3 JSON (the proto name) and in REST JSON. */
  proto: string;
  rest: string;
  container: "list" | "map" | "single";
  kind: "scalar" | "enum" | "message";
  message?: DescMessage;
  /** Enum value names (proto3 JSON) to their REST spelling; undefined for an unspecified value. */
  enumValues?: Map<string, string | undefined>;
  is64: boolean;
}

/** A tagged-union oneof: one type key and one value key in REST JSON. */
interface UnionPlan {
  typeKey: string;
  valueKey: string;
  members: { proto: string; tag: string; message: DescMessage }[];
}

type MessagePlan = (FieldPlan | UnionPlan)[] | "well-known";

const plans = { answer: new WeakMap<DescMessage, MessagePlan>(), request: new WeakMap<DescMessage, MessagePlan>() };

function planOf(desc: DescMessage, direction: Direction): MessagePlan {
  let plan = plans[direction].get(desc);
  if (plan) return plan;
  plan = isWellKnown(desc) ? "well-known" : [];
  if (plan !== "well-known") {
    for (const member of desc.members) {
      const union = member.kind === "oneof" ? restUnion(member) : undefined;
      if (member.kind === "oneof" && union) {
        plan.push({ ...union, members: member.fields.map((f) => ({ proto: f.name, tag: restTag(f), message: f.message! })) });
        continue;
      }
      for (const field of member.kind === "oneof" ? member.fields : [member]) if (direction === "request" || !isInputOnly(field)) plan.push(fieldPlan(field));
    }
  }
  plans[direction].set(desc, plan);
  return plan;
}

function fieldPlan(field: DescField): FieldPlan {
  const kind = elementKind(field);
  return {
    proto: field.name,
    rest: restFieldName(field),
    container: field.fieldKind === "list" || field.fieldKind === "map" ? field.fieldKind : "single",
    kind,
    ...(kind === "message" ? { message: field.message! } : {}),
    ...(kind === "enum" ? { enumValues: new Map(field.enum!.values.map((v) => [v.name, restEnumValue(v)])) } : {}),
    is64: kind === "scalar" && is64Bit(field.scalar!),
  };
}

function messageToRest(desc: DescMessage, json: JsonObject, direction: Direction): JsonObject {
  const plan = planOf(desc, direction);
  if (plan === "well-known") return json;
  const out: JsonObject = {};
  for (const member of plan) {
    if ("typeKey" in member) {
      const set = member.members.find((m) => json[m.proto] !== undefined);
      if (set) {
        out[member.typeKey] = set.tag;
        out[member.valueKey] = messageToRest(set.message, json[set.proto] as JsonObject, direction);
      }
      continue;
    }
    const value = json[member.proto];
    if (value === undefined) continue;
    const rest = valueToRest(member, value, direction);
    if (rest !== undefined) out[member.rest] = rest;
  }
  return out;
}

function valueToRest(field: FieldPlan, value: JsonValue, direction: Direction): JsonValue | undefined {
  switch (field.container) {
    case "list":
      return (value as JsonValue[]).map((item) => elementToRest(field, item, direction)!);
    case "map":
      return Object.fromEntries(Object.entries(value as JsonObject).map(([key, item]) => [key, elementToRest(field, item, direction)!]));
    default:
      return elementToRest(field, value, direction);
  }
}

// One value of a field, or one element of a list or map field.
function elementToRest(field: FieldPlan, value: JsonValue, direction: Direction): JsonValue | undefined {
  if (field.kind === "message") return messageToRest(field.message!, value as JsonObject, direction);
  if (field.kind === "enum") {
    return typeof value === "string" && field.enumValues!.has(value) ? field.enumValues!.get(value) : value;
  }
  if (field.is64 && typeof value === "string") {
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
