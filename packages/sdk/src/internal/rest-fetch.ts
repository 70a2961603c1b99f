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
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, config.timeoutMs);
  const onAbort = () => controller.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const headers: Record<string, string> = { accept: "application/json", ...(await config.headers()) };
    if (request.body !== undefined) headers["content-type"] = "application/json";
    if (key) headers["idempotency-key"] = key;
    let response: Response;
    let text: string;
    try {
      response = await (config.fetch ?? fetch)(url, {
        method: request.method,
        headers,
        ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
        signal: controller.signal,
      });
      text = await response.text();
    } catch (e) {
      if (signal?.aborted) throw aborted(signal);
      if (timedOut) throw new ConnectionTimeoutError({ code: "TIMEOUT", message: `no answer within ${config.timeoutMs} ms: ${request.method} ${url}`, cause: e });
      throw new ConnectionError({ code: "CONNECTION_ERROR", message: `the server could not be reached: ${request.method} ${url}: ${(e as Error)?.message ?? e}`, cause: e });
    }
    const body = parse(text);
    if (!response.ok) throw errorFromResponse(response.status, body, response.headers);
    return body as T;
  } catch (e) {
    if (e instanceof HeliosDBError) throw e;
    throw new HeliosDBError({ code: "INTERNAL_ERROR", message: (e as Error)?.message ?? String(e), cause: e });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
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

function urlOf(baseUrl: string, path: string, query: RestRequest["query"] = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Array.isArray(query) ? query : Object.entries(query)) if (value !== undefined) params.append(name, String(value));
  const search = params.toString();
  return `${baseUrl.replace(/\/+$/, "")}${path}${search ? `?${search}` : ""}`;
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

