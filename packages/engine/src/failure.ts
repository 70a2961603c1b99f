// What a failure was, for the retry that follows it and the event that
// reports it: which database failed (tagged where the error arose), its code
// (PostgreSQL's SQLSTATE or the socket's errno), and whether trying again
// can help. Outages, restarts and lost connections are retried; what a
// person must change first (an incompatible schema change, a configuration
// the source refuses, a tampered batch) is not.

export type Side = "source" | "target";

const SIDE = Symbol("heliosdb.side");

/** Marks an error as having arisen on `side`; the innermost mark wins. */
export function tagSide<E>(side: Side, error: E): E {
  if (error && typeof error === "object" && !(SIDE in error)) {
    Object.defineProperty(error, SIDE, { value: side, enumerable: false });
  }
  return error;
}

/** Runs `work`, marking whatever it rejects with as `side`'s failure. */
export async function onSide<T>(side: Side, work: Promise<T> | (() => Promise<T>)): Promise<T> {
  try {
    return await (typeof work === "function" ? work() : work);
  } catch (e) {
    throw tagSide(side, e);
  }
}

export function sideOf(error: unknown): Side | undefined {
  return error && typeof error === "object" ? ((error as { [SIDE]?: Side })[SIDE] ?? sideOf((error as { cause?: unknown }).cause)) : undefined;
}

/** PostgreSQL's SQLSTATE, a socket's errno name (ECONNREFUSED), or the error's class name. */
export function errorCode(error: unknown): string {
  const e = error as { code?: unknown; sqlState?: unknown; name?: unknown; cause?: unknown } | undefined;
  if (typeof e?.sqlState === "string") return e.sqlState;
  if (typeof e?.code === "string" && e.code) return e.code;
  if (e?.cause) {
    const inner = errorCode(e.cause);
    if (inner !== "Error") return inner;
  }
  return typeof e?.name === "string" ? e.name : "Error";
}

/** The SQLSTATE PostgreSQL answered with, where the failure is one (here or in its causes). */
export function sqlStateOf(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; sqlState?: unknown; cause?: unknown; severity?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.sqlState === "string") return e.sqlState;
    // node-postgres: a DatabaseError carries the SQLSTATE as `code`, beside `severity`.
    if (typeof e.code === "string" && typeof e.severity === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

// Failures no retry can mend: they wait for a person (and an explicit start).
const PERMANENT = new Set([
  "SchemaChangeError",
  "BatchIntegrityError",
  "BatchFormatError",
  "PreflightError",
  "RowFilterError",
  "TransformValidationError",
  "SynchronousSetupError",
]);

/** Whether trying again later can succeed without anyone changing anything. */
export function isRetryable(error: unknown): boolean {
  const name = (error as { name?: unknown } | undefined)?.name;
  return !(typeof name === "string" && PERMANENT.has(name));
}

export interface BackoffOptions {
  /** The first delay (default 1000 ms); each failure doubles it … */
  initialMs?: number;
  /** … up to this cap (default 30 000 ms). */
  maxMs?: number;
}

/**
 * Capped exponential backoff with jitter: the n-th delay is drawn from
 * [½, 1] × min(max, initial × 2ⁿ), so that replications failing together
 * (one source down) do not all retry at the same instant.
 */
export class Backoff {
  /** Failures since the last success. */
  attempts = 0;
  constructor(private readonly options: BackoffOptions = {}) {}

  next(): number {
    const initial = this.options.initialMs ?? 1000;
    const ceiling = Math.min(this.options.maxMs ?? 30_000, initial * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    return Math.round(ceiling * (0.5 + Math.random() / 2));
  }

  reset(): void {
    this.attempts = 0;
  }
}
