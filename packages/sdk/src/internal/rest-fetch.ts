// One REST call as the SDK makes it: fetch with the caller's credentials, a
// timeout per attempt, the §6.3 retries, and — for every call that changes
// something — one Idempotency-Key for the whole logical call, sent again
// with each retry, so a create retried after a lost answer creates once.
import { ConnectionError, ConnectionTimeoutError, errorFromResponse, HeliosDBError } from "../core/errors";
import { aborted, withRetries, type RetryOptions } from "../core/retry";

export interface RestConfig {
  /** The API's base URL, `…/v1` included. */
  baseUrl: string;
  fetch?: typeof fetch;
  /** The credential headers of each attempt (a provider may refresh a token between them). */
  headers: () => Record<string, string> | Promise<Record<string, string>>;
  /** Milliseconds an attempt may take before it is abandoned (and retried). */
  timeoutMs: number;
  retry?: Omit<RetryOptions, "signal">;
  /**
   * An undici dispatcher that closes a socket silent for `timeoutMs` itself
   * (Node, with the platform's fetch: src/node/rest-pool.ts). With it an
   * attempt needs no AbortSignal of its own; it still stops waiting at
   * `timeoutMs`, should the fetch in use ignore the dispatcher.
   */
  pool?: object | undefined;
}

export interface RestRequest {
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  /** The path under the base URL, its variables already in it (`/replications/…`). */
  path: string;
  /** Query parameters: pairs (a name repeated for a list), or an object of single values. */
  query?: [string, string][] | Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal | undefined;
  /** The key of this logical call; one is made for every call that is not a GET. */
  idempotencyKey?: string;
}

/** The call's JSON answer (undefined for 204), or the error of its last attempt. */
export async function restCall<T>(config: RestConfig, request: RestRequest): Promise<T> {
  const key = request.method === "GET" ? undefined : (request.idempotencyKey ?? newIdempotencyKey());
  const url = urlOf(config.baseUrl, request.path, request.query);
  return withRetries(() => attempt<T>(config, request, url, key), { ...config.retry, signal: request.signal });
}

async function attempt<T>(config: RestConfig, request: RestRequest, url: string, key: string | undefined): Promise<T> {
  const signal = request.signal;
  if (signal?.aborted) throw aborted(signal);
  const deadline = config.pool ? timer(config.timeoutMs) : abortingTimer(config.timeoutMs, signal);
  try {
    const credentials = config.headers();
    const headers: Record<string, string> = { accept: "application/json", ...(credentials instanceof Promise ? await credentials : credentials) };
    if (request.body !== undefined) headers["content-type"] = "application/json";
    if (key) headers["idempotency-key"] = key;
    const init: RequestInit & { dispatcher?: object } = { method: request.method, headers };
    if (request.body !== undefined) init.body = JSON.stringify(request.body);
    if (config.pool) init.dispatcher = config.pool;
    const attemptSignal = deadline.signal ?? signal;
    if (attemptSignal) init.signal = attemptSignal;
    let response: Response;
    let text: string;
    try {
      ({ response, text } = await deadline.race(send(config.fetch ?? fetch, url, init)));
    } catch (e) {
      if (signal?.aborted) throw aborted(signal);
      if (deadline.expired || isPoolTimeout(e)) throw new ConnectionTimeoutError({ code: "TIMEOUT", message: `no answer within ${config.timeoutMs} ms: ${request.method} ${url}`, cause: e });
      throw new ConnectionError({ code: "CONNECTION_ERROR", message: `the server could not be reached: ${request.method} ${url}: ${(e as Error)?.message ?? e}`, cause: e });
    }
    const body = parse(text);
    if (!response.ok) throw errorFromResponse(response.status, body, response.headers);
    return body as T;
  } catch (e) {
    if (e instanceof HeliosDBError) throw e;
    throw new HeliosDBError({ code: "INTERNAL_ERROR", message: (e as Error)?.message ?? String(e), cause: e });
  } finally {
    deadline.clear();
  }
}

/** The answer and its whole body. */
async function send(fetching: typeof fetch, url: string, init: RequestInit): Promise<{ response: Response; text: string }> {
  const response = await fetching(url, init);
  return { response, text: await response.text() };
}

/** An attempt's timeout: whether it expired, the signal the fetch is to follow (if any), and a race against it. */
interface Deadline {
  readonly expired: boolean;
  readonly signal: AbortSignal | undefined;
  race<V>(work: Promise<V>): Promise<V>;
  clear(): void;
}

// The timeout as an AbortSignal the fetch follows, which the caller's own signal aborts too: the socket is let go at once.
function abortingTimer(ms: number, callerSignal: AbortSignal | undefined): Deadline {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  callerSignal?.addEventListener("abort", onAbort, { once: true });
  const handle = setTimeout(() => {
    deadline.expired = true;
    controller.abort();
  }, ms);
  const deadline = {
    expired: false,
    signal: controller.signal,
    race: <V>(work: Promise<V>) => work,
    clear() {
      clearTimeout(handle);
      callerSignal?.removeEventListener("abort", onAbort);
    },
  };
  return deadline;
}

// The timeout as a plain timer, for a fetch whose pool lets go of a silent socket itself: the call stops waiting either way.
function timer(ms: number): Deadline {
  let expire!: (e: Error) => void;
  const expired = new Promise<never>((_, reject) => (expire = reject));
  expired.catch(() => undefined); // it may expire before anything races it (while a token is fetched)
  const handle = setTimeout(() => {
    deadline.expired = true;
    expire(new Error(`no answer within ${ms} ms`));
  }, ms);
  const deadline = {
    expired: false,
    signal: undefined,
    race: <V>(work: Promise<V>) => Promise.race([work, expired]),
    clear: () => clearTimeout(handle),
  };
  return deadline;
}

// undici's own timeouts (connect, headers, body), as fetch reports them: a TypeError whose cause has the code.
function isPoolTimeout(e: unknown): boolean {
  const code = ((e as { cause?: { code?: unknown } })?.cause ?? (e as { code?: unknown }))?.code;
  return code === "UND_ERR_CONNECT_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
}

// An answer that is not JSON (a proxy's HTML page) is kept as its text: the error then says its status.
function parse(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function urlOf(baseUrl: string, path: string, query: RestRequest["query"]): string {
  const base = baseUrl.endsWith("/") ? baseUrl.replace(/\/+$/, "") : baseUrl;
  if (!query) return base + path;
  const params = new URLSearchParams();
  for (const [name, value] of Array.isArray(query) ? query : Object.entries(query)) if (value !== undefined) params.append(name, String(value));
  const search = params.toString();
  return `${base}${path}${search ? `?${search}` : ""}`;
}

/** A random UUID (v4): crypto.randomUUID where the platform has it (browsers only offer it on secure origins). */
export function newIdempotencyKey(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === "function") return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

