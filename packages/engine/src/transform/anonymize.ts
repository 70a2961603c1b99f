// Per-column anonymizers. Values arrive and leave in PostgreSQL's text output
// format (what COPY text and pgoutput carry), so every output here must be
// text that PostgreSQL accepts as input for the target column's type.
// Error messages never include a value: they may end up in logs.
import { createHmac } from "node:crypto";
import type { Column } from "../types";
import { TEXT_OID, typeInfo, type TypeInfo, type TypeKind } from "./pg-types";
import { HmacSha256 } from "./hmac-sha256";
import type { TokenVault } from "./token-vault";

export type AnonymizeMethod = "hash" | "tokenize" | "redact" | "generalize";

/** Transforms one non-null value; null and UNCHANGED_TOAST never reach it. */
export type ValueTransform = (value: string) => string;

/**
 * A transform that reads a value's UTF-8 bytes and writes its output's,
 * for an output of fixed length that COPY text never escapes: a row in
 * COPY form is transformed without decoding the value into a string.
 */
export interface FixedBytesTransform {
  length: number;
  write(src: Uint8Array, from: number, to: number, out: Uint8Array, at: number): void;
  /** Shared by the columns that can be computed together (the Hash columns under one key). */
  lanes?: LaneWriter;
}

/** `write` for up to `width` values in one call: value j is `src[from[j], to[j])`, its output goes to `out[at[j]]`. */
export interface LaneWriter {
  readonly width: number;
  writeLanes(src: Uint8Array, from: ArrayLike<number>, to: ArrayLike<number>, count: number, out: Uint8Array, at: ArrayLike<number>): void;
}

/**
 * Hex HMAC-SHA-256 of the value's UTF-8 bytes: deterministic per tenant key,
 * so joins still work. (The Hash anonymizer computes the same with
 * HmacSha256, which is faster for many values under one key.)
 */
export function hashValue(key: Buffer, value: string): string {
  return createHmac("sha256", key).update(value, "utf8").digest("hex");
}

export const TOKEN_PREFIX = "tok_";
// 20 bytes = 160 bits: comfortably above the 128 needed to make accidental
// collisions (which would merge two values under one token) negligible, and
// exactly 32 base32 characters, so no padding.
const TOKEN_BYTES = 20;
const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

function base32(bytes: Buffer): string {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** The deterministic token for a value: "tok_" + 32 base32 characters of an HMAC. */
export function tokenValue(key: Buffer, value: string): string {
  const mac = createHmac("sha256", key).update(value, "utf8").digest();
  return TOKEN_PREFIX + base32(mac.subarray(0, TOKEN_BYTES));
}

// How many already-stored tokens to remember, to avoid re-sending them on
// every batch. Bounded so a high-cardinality column cannot grow memory
// without end; forgetting only costs a redundant (idempotent) vault insert.
const KNOWN_TOKENS_LIMIT = 100_000;

/** Tokenizes values for one tenant, queueing new (token, value) pairs for the vault. */
export class Tokenizer {
  readonly #tenantId: string;
  readonly #key: Buffer;
  readonly #vault: TokenVault;
  #pending = new Map<string, string>();
  #known = new Set<string>();

  constructor(tenantId: string, key: Buffer, vault: TokenVault) {
    this.#tenantId = tenantId;
    this.#key = key;
    this.#vault = vault;
  }

  tokenize(value: string): string {
    const token = tokenValue(this.#key, value);
    if (!this.#known.has(token) && !this.#pending.has(token)) this.#pending.set(token, value);
    return token;
  }

  /** Pairs waiting for flush(). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Writes queued pairs to the vault. Await it before committing the batch
   * that carries the tokens, so no token reaches the target without its value
   * in the vault. On failure the pairs stay queued for the next attempt.
   */
  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    try {
      await this.#vault.store(this.#tenantId, batch);
    } catch (e) {
      for (const [token, value] of batch) if (!this.#pending.has(token)) this.#pending.set(token, value);
      throw e;
    }
    if (this.#known.size + batch.size > KNOWN_TOKENS_LIMIT) this.#known.clear();
    for (const token of batch.keys()) this.#known.add(token);
  }
}

// ---- Redact: one constant per column, valid for its type -------------------

const REDACT_BY_KIND: Partial<Record<TypeKind, string>> = {
  text: "REDACTED",
  int2: "0", int4: "0", int8: "0", numeric: "0", float4: "0", float8: "0",
  bool: "false",
  date: "1970-01-01",
  timestamp: "1970-01-01 00:00:00",
  timestamptz: "1970-01-01 00:00:00+00",
  time: "00:00:00",
  timetz: "00:00:00+00",
  uuid: "00000000-0000-0000-0000-000000000000",
  json: "null", jsonb: "null",
  bytea: "\\x",
  inet: "0.0.0.0", cidr: "0.0.0.0/32",
};

/** The mask Redact writes for a column of this type, or undefined when the type has none. */
export function redactMask(info: TypeInfo): string | undefined {
  const mask = REDACT_BY_KIND[info.kind];
  // varchar(n)/char(n) reject longer input, so the mask is cut to n.
  if (mask !== undefined && info.kind === "text" && info.maxLength !== undefined) return mask.slice(0, info.maxLength);
  return mask;
}

// ---- Generalize: a coarser value of the same type ---------------------------

const BUCKET = 10n;
const INT_MIN: Partial<Record<TypeKind, bigint>> = { int2: -32768n, int4: -2147483648n, int8: -9223372036854775808n };

/** Floors a decimal text to a multiple of 10, exactly (BigInt), or null when it is not a plain decimal. */
function floorDecimalToBucket(value: string): bigint | null {
  const m = /^\s*([+-]?)(\d+)(?:\.(\d*))?\s*$/.exec(value);
  if (!m) return null;
  const negative = m[1] === "-";
  const whole = BigInt(m[2] ?? "0");
  const hasFraction = /[1-9]/.test(m[3] ?? "");
  if (!negative) return (whole / BUCKET) * BUCKET;
  // Floor of a negative number rounds away from zero: -9.99 → -10.
  const magnitude = whole + (hasFraction ? 1n : 0n);
  const result = -(((magnitude + BUCKET - 1n) / BUCKET) * BUCKET);
  return result === 0n ? 0n : result;
}

function generalizeInteger(kind: TypeKind): ValueTransform {
  const min = INT_MIN[kind] ?? 0n;
  return (value) => {
    const bucket = floorDecimalToBucket(value);
    if (bucket === null) throw new Error(`cannot generalize an ${kind} value that is not an integer`);
    // The lowest bucket can start below the type's minimum (int2 -32768 → -32770): clamp.
    return String(bucket < min ? min : bucket);
  };
}

function generalizeNumeric(info: TypeInfo): ValueTransform {
  const { precision, scale = 0 } = info;
  // numeric(p, s) holds fewer than 10^(p-s) in magnitude; a negative value's
  // bucket can reach that bound (numeric(3,2) -9.99 → -10): clamp to the most
  // negative value the type holds.
  const intDigits = precision === undefined ? undefined : precision - scale;
  const mostNegative =
    precision === undefined
      ? ""
      : scale > 0
        ? `-${"9".repeat(precision - scale) || "0"}.${"9".repeat(scale)}`
        : `-${"9".repeat(precision)}${"0".repeat(-scale)}`;
  return (value) => {
    // numeric has NaN and ±Infinity; they carry no personal detail to coarsen.
    if (/^[+-]?(nan|infinity)$/i.test(value.trim())) return value;
    const bucket = floorDecimalToBucket(value);
    if (bucket === null) throw new Error("cannot generalize a numeric value that is not a decimal number");
    const text = String(bucket);
    if (intDigits !== undefined && bucket !== 0n && text.replace("-", "").length > intDigits) return mostNegative;
    return text;
  };
}

const generalizeFloat: ValueTransform = (value) => {
  const x = Number(value);
  if (Number.isNaN(x) && !/^\s*[+-]?nan\s*$/i.test(value)) {
    throw new Error("cannot generalize a float value that is not a number");
  }
  if (!Number.isFinite(x)) return value; // NaN, ±Infinity
  // JavaScript's shortest round-trip formatting ("1e+21") is valid float input.
  return String(Math.floor(x / 10) * 10 || 0);
};

// ISO DateStyle (the default, and what COPY and pgoutput produce under it):
// "2024-05-17", "0044-03-15 BC", timestamps "2024-05-17 13:45:12.5+02".
const DATE_RE = /^(\d{4,})-(\d{2})-\d{2}( BC)?$/;
const TIMESTAMP_RE = /^(\d{4,})-(\d{2})-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?([+-]\d{2}(?::\d{2}){0,2})?( BC)?$/;

function isInfinity(value: string): boolean {
  return value === "infinity" || value === "-infinity";
}

const generalizeDate: ValueTransform = (value) => {
  if (isInfinity(value)) return value;
  const m = DATE_RE.exec(value);
  if (!m) throw new Error("cannot generalize a date that is not in ISO DateStyle (YYYY-MM-DD)");
  return `${m[1]}-${m[2]}-01${m[3] ?? ""}`;
};

function generalizeTimestamp(withZone: boolean): ValueTransform {
  return (value) => {
    if (isInfinity(value)) return value;
    const m = TIMESTAMP_RE.exec(value);
    if (!m || (withZone && m[3] === undefined)) {
      throw new Error("cannot generalize a timestamp that is not in ISO DateStyle (YYYY-MM-DD hh:mm:ss)");
    }
    // Month start in the value's own UTC offset: same format, same zone.
    return `${m[1]}-${m[2]}-01 00:00:00${withZone ? m[3] : ""}${m[4] ?? ""}`;
  };
}

/** Expands an IPv6 text address (with "::" or an IPv4 tail) to 8 groups, or null. */
function parseIpv6(address: string): number[] | null {
  // An embedded IPv4 tail ("::ffff:1.2.3.4") is two more groups in hex.
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_all, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const group = (g: string) => (/^[0-9a-f]{1,4}$/i.test(g) ? Number.parseInt(g, 16) : NaN);
  const groups = (part: string | undefined) => (part ? part.split(":").map(group) : []);
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const all = [...head, ...new Array<number>(fill).fill(0), ...rest];
  return all.every((g) => !Number.isNaN(g)) ? all : null;
}

function generalizeInet(cidr: boolean): ValueTransform {
  return (value) => {
    const [address = "", maskText] = value.split("/");
    const mask = maskText === undefined ? undefined : Number(maskText);
    if (address.includes(":")) {
      const groups = parseIpv6(address);
      if (!groups) throw new Error("cannot generalize an IPv6 address that does not parse");
      // Keep the /48 (the site prefix); "a:b:c::" is valid inet and cidr input.
      const network = `${groups.slice(0, 3).map((g) => g.toString(16)).join(":")}::`;
      return cidr ? `${network}/${Math.min(mask ?? 128, 48)}` : network;
    }
    const octets = address.split(".");
    if (octets.length !== 4) throw new Error("cannot generalize an IPv4 address that does not parse");
    const network = `${octets.slice(0, 3).join(".")}.0`;
    // cidr needs the mask written out: without one, PostgreSQL guesses a classful mask.
    return cidr ? `${network}/${Math.min(mask ?? 32, 24)}` : network;
  };
}

// Zip codes, phone prefixes and the like keep their first 3 characters; the
// rest becomes "*", so the length (and a varchar(n) limit) is unchanged.
// Code points, not UTF-16 units, so a character is never split in half.
const KEEP_CHARS = 3;
const generalizeText: ValueTransform = (value) => {
  const chars = Array.from(value);
  if (chars.length <= KEEP_CHARS) return value;
  return chars.slice(0, KEEP_CHARS).join("") + "*".repeat(chars.length - KEEP_CHARS);
};

/** The Generalize function for a column of this type, or undefined when the type has none. */
export function generalizer(info: TypeInfo): ValueTransform | undefined {
  switch (info.kind) {
    case "int2":
    case "int4":
    case "int8":
      return generalizeInteger(info.kind);
    case "numeric":
      return generalizeNumeric(info);
    case "float4":
    case "float8":
      return generalizeFloat;
    case "date":
      return generalizeDate;
    case "timestamp":
      return generalizeTimestamp(false);
    case "timestamptz":
      return generalizeTimestamp(true);
    case "inet":
      return generalizeInet(false);
    case "cidr":
      return generalizeInet(true);
    case "text":
      return generalizeText;
    default:
      return undefined;
  }
}

/** What an anonymizer writes: the function and the target column's type. */
export interface Anonymizer {
  fn: ValueTransform;
  /** The same from bytes to bytes, where the method has that form. */
  bytes?: FixedBytesTransform;
  /** The output type when it differs from the input's (hash and tokenize write text). */
  outputType?: { typeName: string; typeOid: number };
}

export interface AnonymizerDeps {
  hashKey?: Buffer;
  tokenizer?: Tokenizer;
}

const hmacs = new WeakMap<Buffer, HmacSha256>();

/**
 * The anonymizer for `method` on `column`, or a reason (a sentence fragment)
 * why the pair is unsupported, for validation to report.
 */
export function anonymizerFor(
  method: AnonymizeMethod,
  column: Column,
  deps: AnonymizerDeps,
): Anonymizer | { unsupported: string } {
  const info = typeInfo(column);
  const asText = { typeName: "text", typeOid: TEXT_OID };
  switch (method) {
    case "hash": {
      const key = deps.hashKey;
      if (!key) return { unsupported: "Hash needs the tenant's hash key" };
      // One per key, so that a table's Hash columns share it and are hashed together.
      let hmac = hmacs.get(key);
      if (!hmac) hmacs.set(key, (hmac = new HmacSha256(key)));
      const shared = hmac;
      return {
        fn: (v) => shared.hex(v),
        bytes: { length: 64, write: (src, from, to, out, at) => shared.hexInto(src, from, to, out, at), lanes: shared },
        outputType: asText,
      };
    }
    case "tokenize": {
      const tokenizer = deps.tokenizer;
      if (!tokenizer) return { unsupported: "Tokenize needs a token vault, and none is configured" };
      return { fn: (v) => tokenizer.tokenize(v), outputType: asText };
    }
    case "redact": {
      const mask = redactMask(info);
      if (mask === undefined) return { unsupported: `Redact has no mask for type ${column.typeName}` };
      return { fn: () => mask };
    }
    case "generalize": {
      const fn = generalizer(info);
      if (!fn) return { unsupported: `Generalize does not support type ${column.typeName}` };
      return { fn };
    }
  }
}
