// What a caller passes to a resource method, made into the RPC's request
// message: the message's fields by their camelCase names (as protobuf-es
// and spec §9.1 spell them), where an enum may also be named as the spec
// writes it (`qosTier: 'Premium'`; the types take exactly the REST
// spellings, enum-names.ts, and at run time the proto name
// `QOS_TIER_PREMIUM` is accepted too, for JavaScript callers), a Timestamp
// given as a Date, and a nested message as a plain object. A name the
// message does not have, or an enum value it does not know, is refused
// before anything is sent.
import { create, isMessage, type DescEnum, type DescField, type DescMessage, type Message, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { restEnumValue } from "@heliosdb/replication-proto";
import { errorOf } from "../core/errors";
import type { EnumNames } from "./enum-names";

/** The parameters of a request message `T`: every field optional, enums also by their REST names, Timestamps also as Dates. */
export type Params<T> = { [K in keyof T as K extends "$typeName" | "$unknown" ? never : K]?: ParamOf<T[K]> };

type ParamOf<V> = V extends Message
  ? V extends { $typeName: "google.protobuf.Timestamp" }
    ? V | Date
    : Params<V>
  : V extends Uint8Array | bigint | string | boolean
    ? V
    : V extends readonly (infer E)[]
      ? ParamOf<E>[]
      : [V] extends [number]
        ? {} extends Record<V, 1>
          ? V
          : V | RestName<V>
        : V extends object
          ? { [K in keyof V]: ParamOf<V[K]> }
          : V;

/** The REST spellings of the enum `V` belongs to (V is one member: ParamOf distributes over an enum's members). */
type RestName<V> = EnumNames extends infer Pair ? (Pair extends [infer E, infer Names] ? (V extends E ? Names : never) : never) : never;

interface Violation {
  field: string;
  description: string;
}

/** The request message of `params`; throws InvalidRequestError naming every parameter it could not use. */
export function messageFrom<Desc extends DescMessage>(schema: Desc, params: object = {}): MessageShape<Desc> {
  if (isMessage(params, schema)) return params as MessageShape<Desc>;
  const violations: Violation[] = [];
  const init = initOf(schema, params as Record<string, unknown>, "", violations);
  if (violations.length > 0) {
    throw errorOf({ code: "INVALID_REQUEST", message: violations.map((v) => `${v.field}: ${v.description}`).join("; "), details: { violations } });
  }
  return create(schema, init as never);
}

function initOf(desc: DescMessage, params: Record<string, unknown>, path: string, out: Violation[]): Record<string, unknown> {
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    out.push({ field: path || "(parameters)", description: `expected an object for ${desc.typeName}` });
    return {};
  }
  const init: Record<string, unknown> = {};
  const known = new Set<string>();
  for (const field of desc.fields) {
    if (field.oneof) continue;
    known.add(field.localName);
    const value = params[field.localName];
    if (value !== undefined) init[field.localName] = valueOf(field, value, join(path, field.localName), out);
  }
  for (const oneof of desc.oneofs) {
    known.add(oneof.localName);
    const value = params[oneof.localName] as { case?: string; value?: unknown } | undefined;
    if (value?.case === undefined) continue;
    const field = oneof.fields.find((f) => f.localName === value.case);
    if (!field) out.push({ field: join(path, oneof.localName), description: `unknown case "${value.case}"; one of ${oneof.fields.map((f) => f.localName).join(", ")}` });
    else init[oneof.localName] = { case: value.case, value: valueOf(field, value.value, join(path, field.localName), out) };
  }
  for (const key of Object.keys(params)) {
    if (!known.has(key) && params[key] !== undefined) out.push({ field: join(path, key), description: `not a parameter of ${desc.typeName.split(".").pop()}` });
  }
  return init;
}

function valueOf(field: DescField, value: unknown, path: string, out: Violation[]): unknown {
  switch (field.fieldKind) {
    case "enum":
      return enumOf(field.enum, value, path, out);
    case "message":
      return messageValue(field.message, value, path, out);
    case "list":
      if (!Array.isArray(value)) return out.push({ field: path, description: "expected a list" }), [];
      return value.map((v, i) =>
        field.listKind === "enum" ? enumOf(field.enum, v, `${path}[${i}]`, out) : field.listKind === "message" ? messageValue(field.message, v, `${path}[${i}]`, out) : v,
      );
    case "map": {
      if (typeof value !== "object" || value === null) return out.push({ field: path, description: "expected an object" }), {};
      const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        field.mapKind === "enum" ? enumOf(field.enum, v, `${path}.${k}`, out) : field.mapKind === "message" ? messageValue(field.message, v, `${path}.${k}`, out) : v,
      ]);
      return Object.fromEntries(entries);
    }
    default:
      return value;
  }
}

function messageValue(desc: DescMessage, value: unknown, path: string, out: Violation[]): unknown {
  if (isMessage(value, desc)) return value;
  if (desc.typeName === "google.protobuf.Timestamp" && value instanceof Date) return timestampFromDate(value);
  return initOf(desc, value as Record<string, unknown>, path, out);
}

// An enum by number, by the spec's name ("Premium") or by the proto name ("QOS_TIER_PREMIUM").
function enumOf(desc: DescEnum, value: unknown, path: string, out: Violation[]): number {
  if (typeof value === "number" && desc.values.some((v) => v.number === value)) return value;
  if (typeof value === "string") {
    const found = desc.values.find((v) => restEnumValue(v) === value || v.name === value);
    if (found) return found.number;
  }
  const names = desc.values.map((v) => restEnumValue(v)).filter((n): n is string => !!n);
  out.push({ field: path, description: `unknown value ${JSON.stringify(value)}; one of ${names.join(", ")}` });
  return 0;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
