// What every request message must be, whatever the protocol and the RPC,
// checked once by one interceptor:
// - its text is well-formed Unicode without NUL: a NUL byte reached
//   PostgreSQL (which refuses it: a 500 for the client), and a lone
//   surrogate from JSON ("\ud800") was silently turned into U+FFFD on its way
//   to a database (INVALID_REQUEST naming each field);
// - the fields the contract marks `(google.api.field_info).format = UUID4`
//   hold a UUID when set (INVALID_REQUEST naming each): ids are checked
//   before any lookup, and the OpenAPI document's `format: uuid` comes from
//   the same option;
// - the fields the contract marks `(google.api.field_behavior) = REQUIRED`
//   are set (VALIDATION_ERROR naming each): the OpenAPI document's
//   `required` comes from the same option, so it says what is enforced.
import { getOption, hasOption, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { field_behavior, FieldBehavior, isUuid } from "@heliosdb/replication-proto";
import { UUID } from "../controller/violations";
import { apiError } from "./errors";

interface Violation {
  field: string;
  description: string;
}

/** Refuses a request message with ill-formed text (INVALID_REQUEST) or without a REQUIRED field (VALIDATION_ERROR). */
export function inputInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    const input = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const message of input) {
          check(req.method.input, message);
          yield message;
        }
      })(),
    });
  };
}

function check(schema: DescMessage, message: Message): void {
  const violations: Violation[] = [];
  visit(schema, message as unknown as Record<string, unknown>, "", violations);
  if (violations.length > 0) {
    const [only] = violations;
    const message = violations.length === 1 && only!.description.startsWith("not a UUID") ? `${only!.field} must be a UUID` : "the request holds values that are not allowed";
    throw apiError("INVALID_REQUEST", message, { violations: violations as never });
  }
  required(schema, message as unknown as Record<string, unknown>, "", violations);
  if (violations.length > 0) throw apiError("VALIDATION_ERROR", "the request is not valid", { violations: violations as never });
}

// The REQUIRED fields of a message, and of the messages set in it.
function required(schema: DescMessage, message: Record<string, unknown>, prefix: string, out: Violation[]): void {
  for (const field of requiredFields(schema)) {
    const value = field.oneof ? valueOfOneof(message, field) : message[field.localName];
    const unset = value === undefined || value === "" || (Array.isArray(value) && value.length === 0) || (field.fieldKind === "map" && Object.keys(value as object).length === 0);
    if (unset) out.push({ field: prefix + field.name, description: "required" });
  }
  for (const field of schema.fields) {
    const value = message[field.localName];
    if (field.fieldKind === "message" && !field.oneof && value && typeof value === "object" && !isWellKnown(field.message)) {
      required(field.message, value as Record<string, unknown>, `${prefix}${field.name}.`, out);
    }
  }
}

const requiredOf = new WeakMap<DescMessage, DescField[]>();

function requiredFields(schema: DescMessage): DescField[] {
  let fields = requiredOf.get(schema);
  if (!fields) {
    fields = schema.fields.filter((f) => hasOption(f, field_behavior) && getOption(f, field_behavior).includes(FieldBehavior.REQUIRED));
    requiredOf.set(schema, fields);
  }
  return fields;
}

function isWellKnown(schema: DescMessage): boolean {
  return schema.typeName.startsWith("google.protobuf.");
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string is refused, or undefined when it is fine. */
export function textProblem(value: string): string | undefined {
  if (value.includes("\u0000")) return "contains a NUL character (U+0000)";
  if (LONE_SURROGATE.test(value)) return "is not well-formed Unicode (a lone surrogate)";
  return undefined;
}

// Messages without a string field anywhere below them are not walked.
const hasText = new WeakMap<DescMessage, boolean>();

function holdsText(schema: DescMessage, seen = new Set<DescMessage>()): boolean {
  const known = hasText.get(schema);
  if (known !== undefined) return known;
  if (seen.has(schema)) return false;
  seen.add(schema);
  const found = schema.fields.some((f) => f.scalar === ScalarType.STRING || (f.fieldKind === "map" && f.mapKey === ScalarType.STRING) || (f.message !== undefined && holdsText(f.message, seen)));
  hasText.set(schema, found);
  return found;
}

function visit(schema: DescMessage, message: Record<string, unknown>, prefix: string, out: Violation[]): void {
  if (!holdsText(schema)) return;
  for (const field of schema.fields) {
    const value = field.oneof ? valueOfOneof(message, field) : message[field.localName];
    if (value === undefined || value === null) continue;
    const name = prefix + field.name;
    if (field.fieldKind === "list") (value as unknown[]).forEach((item, i) => element(field, item, `${name}[${i}]`, out));
    else if (field.fieldKind === "map") {
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        const problem = textProblem(key);
        if (problem) out.push({ field: `${name} key`, description: problem });
        element(field, item, `${name}[${JSON.stringify(key)}]`, out);
      }
    } else element(field, value, name, out);
  }
}

function element(field: DescField, value: unknown, name: string, out: Violation[]): void {
  if (typeof value === "string") {
    const problem = textProblem(value) ?? (value && isUuid(field) && !UUID.test(value) ? `not a UUID: "${value}"` : undefined);
    if (problem) out.push({ field: name, description: problem });
  } else if (field.message && typeof value === "object") {
    visit(field.message, value as Record<string, unknown>, `${name}.`, out);
  }
}

function valueOfOneof(message: Record<string, unknown>, field: DescField): unknown {
  const group = message[field.oneof!.localName] as { case?: string; value?: unknown } | undefined;
  return group?.case === field.localName ? group.value : undefined;
}
