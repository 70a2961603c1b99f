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
import { elementKind, hasPresence, isInputOnly, isWellKnown, restEnumValue, restFieldName, restTag, restUnion } from "./names";
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
  /** For a oneof member: the oneof's property (its case is `localName`). */
  oneof?: string;
  /** Written only when set (explicit presence); otherwise always, as with alwaysEmitImplicit. */
  explicit: boolean;
  /** A singular message field: written by writeMessage directly. */
  message?: DescMessage;
  write: Write;
  /** A tagged-union oneof stands in the plan as one member. */
  union?: Union;
}

interface Union {
  oneof: string;
  cases: Map<string, { tag: string; message: DescMessage }>;
  typeKey: string;
  valueKey: string;
}

const plans = new WeakMap<DescMessage, Member[]>();

function writeMessage(desc: DescMessage, message: Record<string, unknown>): string {
  if (isWellKnown(desc)) return writeWellKnown(desc, message);
  const plan = planOf(desc);
  let out = "{";
  let first = true;
  for (let i = 0; i < plan.length; i++) {
    const m = plan[i]!;
    let text: string | undefined;
    let key: string;
    if (m.union) {
      const set = message[m.union.oneof] as { case?: string; value?: unknown };
      const member = set.case !== undefined ? m.union.cases.get(set.case) : undefined;
      if (!member) continue;
      key = m.union.typeKey;
      text = `${JSON.stringify(member.tag)},${m.union.valueKey}${writeMessage(member.message, set.value as never)}`;
    } else {
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
      text = m.message ? writeMessage(m.message, value as never) : m.write(value);
      if (text === undefined) continue;
      key = m.key;
    }
    out += first ? key + text : "," + key + text;
    first = false;
  }
  return out + "}";
}

const WELL_KNOWN_OPTIONS = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;
// protobuf-es's bounds of a Timestamp in JSON: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const TIMESTAMP_MIN_S = -62135596800n;
const TIMESTAMP_MAX_S = 253402300799n;

// Date.toISOString costs more than the rest of a timestamp's writing, and
// an answer's timestamps (created, updated, last checkpoint) repeat from one
// answer to the next: recent ones are remembered by their value.
const isoTexts = new Map<number, string>();

function isoOf(ms: number): string {
  let text = isoTexts.get(ms);
  if (text === undefined) {
    text = new Date(ms).toISOString();
    if (isoTexts.size >= 1024) isoTexts.clear();
    isoTexts.set(ms, text);
  }
  return text;
}

// Well-known types keep their canonical form, as protobuf-es writes it with
// the options toRest uses. Timestamps, in every answer, are written here the
// same way without the general writer's per-call setup.
function writeWellKnown(desc: DescMessage, message: Record<string, unknown>): string {
  if (desc.typeName === "google.protobuf.Timestamp") {
    const { seconds, nanos } = message as { seconds: bigint; nanos: number };
    // Whole milliseconds (all that a Date holds): the ISO form, without ".000" when there are none.
    if (seconds >= TIMESTAMP_MIN_S && seconds <= TIMESTAMP_MAX_S && nanos >= 0 && nanos % 1_000_000 === 0 && nanos < 1e9) {
      const iso = isoOf(Number(seconds) * 1000 + nanos / 1_000_000);
      return `"${nanos === 0 ? iso.replace(".000Z", "Z") : iso}"`;
    }
  }
  return JSON.stringify(toJson(desc, message as never, WELL_KNOWN_OPTIONS));
}

function planOf(desc: DescMessage): Member[] {
  let plan = plans.get(desc);
  if (plan) return plan;
  plan = [];
  plans.set(desc, plan);
  for (const member of desc.members) {
    if (member.kind === "oneof") plan.push(...oneofPlan(member));
    else if (!isInputOnly(member)) plan.push(fieldPlan(member));
  }
  return plan;
}

function oneofPlan(oneof: DescOneof): Member[] {
  const union = restUnion(oneof);
  if (!union) return oneof.fields.filter((f) => !isInputOnly(f)).map(fieldPlan);
  const typeKey = `${JSON.stringify(union.typeKey)}:`;
  return [
    {
      key: typeKey,
      localName: oneof.localName,
      explicit: false,
      write: () => undefined,
      union: {
        oneof: oneof.localName,
        cases: new Map(oneof.fields.map((f) => [f.localName, { tag: restTag(f), message: f.message! }])),
        typeKey,
        valueKey: `${JSON.stringify(union.valueKey)}:`,
      },
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
    explicit: hasPresence(field),
    ...(field.fieldKind === "message" ? { message: field.message } : {}),
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
      if (typeof v === "bigint") {
        const n = Number(v);
        return Number.isSafeInteger(n) ? String(n) : `"${v.toString()}"`;
      }
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
