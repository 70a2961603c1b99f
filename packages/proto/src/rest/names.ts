// REST names of fields, enum values and tagged unions, read from the
// descriptors. Every REST surface (mapping, transcoder, OpenAPI) asks here, so
// a name is decided in one place. The rules are in docs/rest-mapping.md.
import {
  getOption,
  hasOption,
  type DescEnumValue,
  type DescField,
  type DescMessage,
  type DescOneof,
} from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence as FieldPresence } from "@bufbuild/protobuf/wkt";
import { field_behavior, FieldBehavior } from "../gen/google/api/field_behavior_pb";
import { field_info, FieldInfo_Format } from "../gen/google/api/field_info_pb";
import { rest_tag, rest_union, rest_value } from "../gen/heliosdb/replication/v1/rest_pb";

// Decided once per field: the mapping asks for every field of every request.
const fieldNames = new WeakMap<DescField, string>();

/**
 * Whether a field is `(google.api.field_behavior) = INPUT_ONLY` (a password):
 * read from requests, never written in an answer, not even empty.
 */
export function isInputOnly(field: DescField): boolean {
  return hasOption(field, field_behavior) && getOption(field, field_behavior).includes(FieldBehavior.INPUT_ONLY);
}

// Decided once per field: the input check asks for every string of every request, and reading an option decodes it anew.
const uuidFields = new WeakMap<DescField, boolean>();

/** Whether a field is `(google.api.field_info).format = UUID4`: the server refuses another value (an empty one is unset). */
export function isUuid(field: DescField): boolean {
  let uuid = uuidFields.get(field);
  if (uuid === undefined) {
    uuid = hasOption(field, field_info) && getOption(field, field_info).format === FieldInfo_Format.UUID4;
    uuidFields.set(field, uuid);
  }
  return uuid;
}

/** The REST JSON key of a field: its explicit `json_name`, else its proto name. */
export function restFieldName(field: DescField): string {
  let name = fieldNames.get(field);
  if (name === undefined) {
    name = field.jsonName !== protoCamelCase(field.name) ? field.jsonName : field.name;
    fieldNames.set(field, name);
  }
  return name;
}

/**
 * The REST spelling of an enum value: its `rest_value` option, else its name
 * without the enum's shared prefix, in PascalCase (BEST_EFFORT → "BestEffort").
 * An `<ENUM>_UNSPECIFIED` zero value means "unset" and has no REST spelling.
 */
export function restEnumValue(value: DescEnumValue): string | undefined {
  if (!enumValues.has(value)) enumValues.set(value, enumValueName(value));
  return enumValues.get(value);
}

// Decided once per value, as field names are.
const enumValues = new WeakMap<DescEnumValue, string | undefined>();

function enumValueName(value: DescEnumValue): string | undefined {
  if (hasOption(value, rest_value)) return getOption(value, rest_value);
  const prefix = value.parent.sharedPrefix;
  const local =
    prefix && value.name.toLowerCase().startsWith(prefix) ? value.name.slice(prefix.length) : value.name;
  if (value.number === 0 && local === "UNSPECIFIED") return undefined;
  return local
    .toLowerCase()
    .split("_")
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join("");
}

/** The REST spellings of an enum's values, in declaration order. */
export function restEnumValues(values: readonly DescEnumValue[]): string[] {
  return values.map(restEnumValue).filter((name): name is string => name !== undefined);
}

/** How a oneof renders as a tagged object, or undefined for a plain oneof. */
export function restUnion(oneof: DescOneof): { typeKey: string; valueKey: string } | undefined {
  if (!hasOption(oneof, rest_union)) return undefined;
  const { typeKey, valueKey } = getOption(oneof, rest_union);
  return { typeKey, valueKey };
}

/** The tag of a member of a tagged-union oneof. */
export function restTag(field: DescField): string {
  return hasOption(field, rest_tag) ? getOption(field, rest_tag) : field.name;
}

/**
 * Whether a field is written only when set (explicit presence: messages,
 * `optional` scalars, oneof members); the others (plain scalars, enums,
 * lists, maps) are written always, zero values included (rules 3 and 4).
 */
export function hasPresence(field: DescField): boolean {
  return field.fieldKind !== "list" && field.fieldKind !== "map" && field.presence !== FieldPresence.IMPLICIT;
}

/** The kind of one value of a field: of the field itself, or of each list or map element. */
export function elementKind(field: DescField): "scalar" | "enum" | "message" {
  if (field.fieldKind === "list") return field.listKind;
  if (field.fieldKind === "map") return field.mapKind;
  return field.fieldKind;
}

/**
 * Well-known types keep their canonical proto3 JSON form (Timestamp as RFC
 * 3339, FieldMask as "a.b,c", Struct as a plain object).
 */
export function isWellKnown(message: DescMessage): boolean {
  return message.typeName.startsWith("google.protobuf.");
}

// protoc's default json_name: drop underscores, upper-case the letter after each.
function protoCamelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/_/g, "");
}
