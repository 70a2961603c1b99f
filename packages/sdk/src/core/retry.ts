// The retry policy of spec §6.3: another attempt on 503, on 429 (after the
// Retry-After the server gave) and when no answer came at all; never on a
// verdict about the request (400, 401, 403, 404 and the other 4xx), never
// after the caller aborted, and never past the call's deadline. The wait is
// min(max delay, base delay × 2^attempt) with full jitter: a random point
// between 0 and that bound, so clients that failed together do not all come
// back together.
import { AbortedError, ConnectionError, HeliosDBError } from "./errors";

export interface RetryPolicy {
  /** Attempts in all, the first included (spec: 5). */
  maxAttempts: number;
  /** The bound of the first retry's wait (spec: 1 s). */
  baseDelayMs: number;
  /** The largest bound (spec: 60 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 };

/** Whether a failure is worth another attempt. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof AbortedError) return false;
  if (error instanceof ConnectionError) return true;
  return error instanceof HeliosDBError && (error.status === 503 || error.status === 429);
}

/** The wait before retry number `retry` (0 for the first): the server's Retry-After when it gave one, else full jitter. */
export function retryDelayMs(retry: number, policy: RetryPolicy, error: unknown, random: () => number = Math.random): number {
  const retryAfter = error instanceof HeliosDBError ? error.retryAfter : undefined;
  if (retryAfter !== undefined) return retryAfter * 1000;
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry));
}

export interface RetryOptions {
  policy?: RetryPolicy;
  /** Ends the waiting (and the attempt under way, which the attempt function is given). */
  signal?: AbortSignal | undefined;
  /** No attempt starts after this moment (ms since the epoch); the last error is thrown instead. */
  deadline?: number | undefined;
  /** Called before each wait (for logs, metrics, tests). */
  onRetry?: (info: { retry: number; delayMs: number; error: unknown }) => void;
  /** For tests: the clock, the wait and the randomness. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** Runs `attempt` (given its number, from 0) until it succeeds or the policy says to stop; throws the last error. */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n + 1 >= policy.maxAttempts || !isRetryable(error) || options.signal?.aborted) throw error;
      const delayMs = retryDelayMs(n, policy, error, options.random);
      if (options.deadline !== undefined && now() + delayMs >= options.deadline) throw error;
      options.onRetry?.({ retry: n, delayMs, error });
      await sleep(delayMs, options.signal);
    }
  }
}

/** Waits `ms`, or rejects with AbortedError as soon as `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function aborted(signal: AbortSignal): AbortedError {
  return new AbortedError({ code: "ABORTED", message: "the call was aborted", cause: signal.reason });
}
