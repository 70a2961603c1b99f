// Collects every field-level problem of a request before refusing it once,
// with all of them, as VALIDATION_ERROR.
import { apiError } from "../transport/errors";

/** A UUID in its text form (any version): the ids the contract marks UUID4 are checked with it. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Violations {
  private readonly list: { field: string; description: string }[] = [];

  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }

  /** Checks a UUID field; returns whether it is one. */
  uuid(field: string, value: string): boolean {
    if (UUID.test(value)) return true;
    this.add(field, value ? `not a UUID: "${value}"` : "required");
    return false;
  }

  required(field: string, value: string): boolean {
    if (value.trim()) return true;
    this.add(field, "required");
    return false;
  }

  /**
   * Checks a text's length (in bytes of UTF-8 when `unit` is "bytes", as
   * PostgreSQL counts names) and that it holds no NUL, which no PostgreSQL
   * string can; returns whether it passed.
   */
  bounded(field: string, value: string, max: number, unit: "bytes" | "characters" = "characters"): boolean {
    const length = unit === "bytes" ? Buffer.byteLength(value, "utf8") : [...value].length;
    if (length > max) this.add(field, `at most ${max} ${unit}`);
    else if (value.includes("\0")) this.add(field, "must not contain NUL characters");
    else return true;
    return false;
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** Throws VALIDATION_ERROR when anything was added. */
  check(message = "the request is not valid"): void {
    if (!this.empty) throw apiError("VALIDATION_ERROR", message, { violations: this.list });
  }
}

/** Refuses a path id that is not a UUID with 400, before any lookup. */
export function requireUuid(field: string, value: string): void {
  if (!UUID.test(value)) throw apiError("INVALID_REQUEST", `${field} must be a UUID`, { violations: [{ field, description: `not a UUID: "${value}"` }] });
}
