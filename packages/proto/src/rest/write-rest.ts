// Message → REST JSON text in one pass: what JSON.stringify(toRest(...))
// gives, without building the canonical proto3 JSON object and then a
// reshaped copy of it (an answer is written far more often than it is
// inspected). The keys, enum spellings and presence rules of each message
// type are planned once; the rules are the same as to-rest.ts, and a test
// holds the two to the same bytes.
import {
  ScalarType,
  toJson,
  type DescField,
  type DescMessage,
  type DescOneof,
  type MessageShape,
} from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence as FieldPresence } from "@bufbuild/protobuf/wkt";
import { elementKind, isWellKnown, restEnumValue, restFieldName, restTag, restUnion } from "./names";
import { is64Bit } from "./to-rest";

/** The REST JSON text of a message: the same as `JSON.stringify(toRest(schema, message))`. */
export function toRestJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): string {
  return writeMessage(schema, message as Record<string, unknown>);
}

type Write = (value: unknown) => string | undefined;

interface Member {
  /** `"key":`, ready to write. */
  key: string;
  localName: string;
  /** For a oneof member: the oneof's property and this member's case. */
  oneof?: string;
  /** Written only when set (explicit presence); otherwise always, as with alwaysEmitImplicit. */
  explicit: boolean;
  write: Write;
}

interface Union {
  oneof: string;
  cases: Map<string, { tag: string; message: DescMessage }>;
  typeKey: string;
  valueKey: string;
}

const plans = new WeakMap<DescMessage, (Member | Union)[]>();
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function writeMessage(desc: DescMessage, message: Record<string, unknown>): string {
  if (isWellKnown(desc)) return writeWellKnown(desc, message);
  let out = "{";
  let first = true;
  for (const m of planOf(desc)) {
    if ("cases" in m) {
      const set = message[m.oneof] as { case?: string; value?: unknown };
      const member = set.case !== undefined ? m.cases.get(set.case) : undefined;
      if (!member) continue;
      out += `${first ? "" : ","}${m.typeKey}${JSON.stringify(member.tag)},${m.valueKey}${writeMessage(member.message, set.value as never)}`;
      first = false;
      continue;
    }
    let value: unknown;
    if (m.oneof !== undefined) {
      const set = message[m.oneof] as { case?: string; value?: unknown };
      if (set.case !== m.localName) continue;
      value = set.value;
    } else {
      value = message[m.localName];
      // As protobuf-es: explicit-presence fields are set when an own property holds a value.
      if (m.explicit && (value === undefined || !Object.prototype.hasOwnProperty.call(message, m.localName))) continue;
    }
    const text = m.write(value);
    if (text === undefined) continue;
    out += first ? m.key + text : "," + m.key + text;
    first = false;
  }
  return out + "}";
}

const WELL_KNOWN_OPTIONS = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;
// protobuf-es's bounds of a Timestamp in JSON: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const TIMESTAMP_MIN_S = -62135596800n;
const TIMESTAMP_MAX_S = 253402300799n;

// Well-known types keep their canonical form, as protobuf-es writes it with
// the options toRest uses. Timestamps, in every answer, are written here the
// same way without the general writer's per-call setup.
function writeWellKnown(desc: DescMessage, message: Record<string, unknown>): string {
  if (desc.typeName === "google.protobuf.Timestamp") {
    const { seconds, nanos } = message as { seconds: bigint; nanos: number };
    // Whole milliseconds (all that a Date holds): the ISO form, without ".000" when there are none.
    if (seconds >= TIMESTAMP_MIN_S && seconds <= TIMESTAMP_MAX_S && nanos >= 0 && nanos % 1_000_000 === 0 && nanos < 1e9) {
      const iso = new Date(Number(seconds) * 1000 + nanos / 1_000_000).toISOString();
      return `"${nanos === 0 ? iso.replace(".000Z", "Z") : iso}"`;
    }
  }
  return JSON.stringify(toJson(desc, message as never, WELL_KNOWN_OPTIONS));
}

function planOf(desc: DescMessage): (Member | Union)[] {
  let plan = plans.get(desc);
  if (plan) return plan;
  plan = [];
  plans.set(desc, plan);
  for (const member of desc.members) {
    if (member.kind === "oneof") plan.push(...oneofPlan(member));
    else plan.push(fieldPlan(member));
  }
  return plan;
}

function oneofPlan(oneof: DescOneof): (Member | Union)[] {
  const union = restUnion(oneof);
  if (!union) return oneof.fields.map(fieldPlan);
  return [
    {
      oneof: oneof.localName,
      cases: new Map(oneof.fields.map((f) => [f.localName, { tag: restTag(f), message: f.message! }])),
      typeKey: `${JSON.stringify(union.typeKey)}:`,
      valueKey: `${JSON.stringify(union.valueKey)}:`,
    },
  ];
}

function fieldPlan(field: DescField): Member {
  const element = elementWriter(field);
  let write: Write = element;
  // Elements that have no REST form are null in a list and absent from a map, as JSON.stringify treats undefined.
  if (field.fieldKind === "list") write = (v) => `[${(v as unknown[]).map((item) => element(item) ?? "null").join(",")}]`;
  if (field.fieldKind === "map") {
    write = (v) => {
      const parts: string[] = [];
      for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
        const text = element(item);
        if (text !== undefined) parts.push(`${JSON.stringify(key)}:${text}`);
      }
      return `{${parts.join(",")}}`;
    };
  }
  return {
    key: `${JSON.stringify(restFieldName(field))}:`,
    localName: field.localName,
    ...(field.oneof ? { oneof: field.oneof.localName } : {}),
    explicit: field.fieldKind !== "list" && field.fieldKind !== "map" && field.presence !== FieldPresence.IMPLICIT,
    write,
  };
}

// One value of a field, or one element of a list or map field.
function elementWriter(field: DescField): Write {
  const kind = elementKind(field);
  if (kind === "message") {
    const message = field.message!;
    return (v) => writeMessage(message, v as never);
  }
  if (kind === "enum") {
    const desc = field.enum!;
    if (desc.typeName === "google.protobuf.NullValue") return () => "null";
    // An unspecified value has no REST spelling (the field is left out); an unknown number stays a number.
    const names = new Map(desc.values.map((v) => [v.number, restEnumValue(v)]));
    return (v) => (names.has(v as number) ? (names.get(v as number) === undefined ? undefined : JSON.stringify(names.get(v as number))) : String(v));
  }
  const scalar = field.scalar!;
  if (is64Bit(scalar)) {
    return (v) => {
      // A JSON number beyond 2^53 loses digits in most parsers: keep the string.
      if (typeof v === "bigint") return v >= MIN_SAFE && v <= MAX_SAFE ? v.toString() : `"${v.toString()}"`;
      const text = String(v);
      return Number.isSafeInteger(Number(text)) ? String(Number(text)) : JSON.stringify(text);
    };
  }
  switch (scalar) {
    case ScalarType.STRING:
      return (v) => JSON.stringify(v);
    case ScalarType.BYTES:
      return (v) => JSON.stringify(base64Encode(v as Uint8Array));
    case ScalarType.BOOL:
      return (v) => (v ? "true" : "false");
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      // proto3 JSON spells the non-finite values as strings.
      return (v) => (Number.isFinite(v) ? String(v) : JSON.stringify(Number.isNaN(v) ? "NaN" : (v as number) > 0 ? "Infinity" : "-Infinity"));
    default:
      return (v) => String(v);
  }
}
