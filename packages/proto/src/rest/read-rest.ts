// REST JSON → message in one walk, for answers of our own API (the SDK's
// REST transport): the mirror of write-rest.ts. `fromRest` is for requests —
// it checks every value, collects every violation and then hands proto3
// JSON to protobuf-es, two walks and a copy. An answer needs none of that:
// keys, enum spellings and element readers of each message type are planned
// once and the message is built as the JSON is walked. What an older SDK
// cannot know — a field or enum value a newer server added — is skipped
// (the value stays unset), and a value of the wrong JSON type is skipped too
// rather than put into the message: the SDK never holds a field of the wrong
// type. A test holds it to `fromRest` for every answer shape.
import { create, fromJson, ScalarType, type DescField, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { elementKind, isWellKnown, restEnumValue, restFieldName, restTag, restUnion } from "./names";
import { is64Bit } from "./to-rest";

/** The message of a REST answer's JSON (as `JSON.parse` gives it). */
export function readRest<Desc extends DescMessage>(schema: Desc, json: unknown): MessageShape<Desc> {
  return readMessage(schema, json) as MessageShape<Desc>;
}

/** Reads one JSON value into a field's value; undefined when it does not fit (skipped). */
type Read = (value: unknown) => unknown;

interface Member {
  localName: string;
  /** For a oneof member: the oneof's property (its case is `localName`). */
  oneof?: string;
  read: Read;
  /** A tagged-union oneof: its type key's member; the value sits at `valueKey`. */
  union?: { oneof: string; valueKey: string; cases: Map<unknown, { localName: string; message: DescMessage }> };
}

const plans = new WeakMap<DescMessage, Map<string, Member>>();

function readMessage(desc: DescMessage, json: unknown): unknown {
  if (isWellKnown(desc)) return readWellKnown(desc, json);
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const plan = planOf(desc);
  const message = create(desc) as Record<string, unknown>;
  for (const key in json) {
    const m = plan.get(key);
    const value = (json as Record<string, unknown>)[key];
    if (!m || value === null || value === undefined) continue;
    if (m.union) {
      const member = m.union.cases.get(value);
      const read = member && readMessage(member.message, (json as Record<string, unknown>)[m.union.valueKey] ?? {});
      if (read !== undefined) message[m.union.oneof] = { case: member!.localName, value: read };
      continue;
    }
    const read = m.read(value);
    if (read === undefined) continue;
    if (m.oneof !== undefined) message[m.oneof] = { case: m.localName, value: read };
    else message[m.localName] = read;
  }
  return message;
}

function planOf(desc: DescMessage): Map<string, Member> {
  let plan = plans.get(desc);
  if (plan) return plan;
  plan = new Map();
  plans.set(desc, plan);
  for (const member of desc.members) {
    const union = member.kind === "oneof" ? restUnion(member) : undefined;
    if (member.kind === "oneof" && union) {
      plan.set(union.typeKey, {
        localName: member.localName,
        read: () => undefined,
        union: {
          oneof: member.localName,
          valueKey: union.valueKey,
          cases: new Map(member.fields.map((f) => [restTag(f), { localName: f.localName, message: f.message! }])),
        },
      });
      continue;
    }
    for (const field of member.kind === "oneof" ? member.fields : [member]) {
      plan.set(restFieldName(field), { localName: field.localName, ...(field.oneof ? { oneof: field.oneof.localName } : {}), read: fieldReader(field) });
    }
  }
  return plan;
}

function fieldReader(field: DescField): Read {
  const element = elementReader(field);
  if (field.fieldKind === "list") {
    return (value) => {
      if (!Array.isArray(value)) return undefined;
      const out: unknown[] = [];
      for (const item of value) {
        const read = element(item);
        if (read !== undefined) out.push(read);
      }
      return out;
    };
  }
  if (field.fieldKind === "map") {
    return (value) => {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
      const out: Record<string, unknown> = {};
      for (const key in value) {
        const read = element((value as Record<string, unknown>)[key]);
        if (read !== undefined) out[key] = read;
      }
      return out;
    };
  }
  return element;
}

function elementReader(field: DescField): Read {
  const kind = elementKind(field);
  if (kind === "message") {
    const message = field.message!;
    return (value) => readMessage(message, value);
  }
  if (kind === "enum") {
    const numbers = new Map<unknown, number>();
    for (const v of field.enum!.values) {
      const spelling = restEnumValue(v);
      if (spelling !== undefined) numbers.set(spelling, v.number);
    }
    return (value) => numbers.get(value);
  }
  return scalarReader(field.scalar!, (field as { longAsString?: boolean }).longAsString === true);
}

function scalarReader(scalar: ScalarType, longAsString: boolean): Read {
  switch (scalar) {
    case ScalarType.STRING:
      return (v) => (typeof v === "string" ? v : undefined);
    case ScalarType.BOOL:
      return (v) => (typeof v === "boolean" ? v : undefined);
    case ScalarType.BYTES:
      return (v) => (typeof v === "string" ? base64Decode(v) : undefined);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return (v) => (typeof v === "number" ? v : undefined);
  }
  if (is64Bit(scalar)) {
    // 64-bit integers travel as decimal strings (or numbers when small).
    return (v) => {
      if (typeof v !== "string" && !(typeof v === "number" && Number.isInteger(v))) return undefined;
      if (typeof v === "string" && !/^-?\d+$/.test(v)) return undefined;
      return longAsString ? String(v) : BigInt(v);
    };
  }
  return (v) => (typeof v === "number" && Number.isInteger(v) ? v : undefined);
}

// RFC 3339 in UTC, as the server writes every timestamp (write-rest.ts).
const UTC = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/;

// An answer's timestamps (created, updated, last checkpoint) repeat from one
// answer to the next: recent ones are remembered by their text.
const instants = new Map<string, { seconds: bigint; nanos: number } | null>();

function instantOf(text: string): { seconds: bigint; nanos: number } | null {
  let instant = instants.get(text);
  if (instant === undefined) {
    const utc = UTC.exec(text);
    const ms = utc ? Date.parse(`${utc[1]}Z`) : Number.NaN;
    instant = Number.isNaN(ms) ? null : { seconds: BigInt(ms / 1000), nanos: utc![2] ? Number(utc![2].padEnd(9, "0")) : 0 };
    if (instants.size >= 1024) instants.clear();
    instants.set(text, instant);
  }
  return instant;
}

// Well-known types keep their proto3 JSON form: protobuf-es reads them, but
// for the timestamps of every answer, read here without its general setup.
function readWellKnown(desc: DescMessage, json: unknown): unknown {
  const instant = desc.typeName === "google.protobuf.Timestamp" && typeof json === "string" ? instantOf(json) : null;
  if (instant) {
    const t = create(desc) as Record<string, unknown>;
    t.seconds = instant.seconds;
    t.nanos = instant.nanos;
    return t;
  }
  try {
    return fromJson(desc, json as JsonValue);
  } catch {
    return undefined;
  }
}
