/** One field of a REST request that cannot be mapped, and why. */
export interface FieldViolation {
  /** The field's path in the request, e.g. `config.transforms[0].config.method`. */
  field: string;
  /** Why it was refused, for a person. */
  description: string;
}

/**
 * A REST request body or query that does not fit the contract: unknown
 * fields, unknown enum values, wrong JSON types. The server answers it with
 * INVALID_REQUEST and the violations as details.
 */
export class RestMappingError extends Error {
  override readonly name = "RestMappingError";
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => (v.field ? `${v.field}: ${v.description}` : v.description)).join("; "));
  }
}

// Joins a parent path and a key the way the violations name fields.
export function childPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}
