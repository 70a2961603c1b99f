// HeliosDBReplicationClient (spec §9.1): one client, its resources, over a
// transport. Credentials: an API key, a bearer token, or a function that
// gives a token (called before every attempt, so it may refresh one).
import { DEFAULT_RETRY_POLICY } from "./core/retry";
import { restTransport, type Transport } from "./internal/transport";
import { Replications } from "./resources/replications";

export interface ClientOptions {
  /** The API's base URL, `/v1` included: `https://api.heliosdb.com/v1`. */
  baseUrl: string;
  /** X-API-Key (spec §5.2). */
  apiKey?: string | undefined;
  /** Authorization: Bearer — a token, or a function giving one before each attempt (spec §5.1). */
  token?: string | (() => string | Promise<string>) | undefined;
  /** Milliseconds an attempt may take (default 60,000). */
  timeout?: number;
  /** Retries after the first attempt, on 503, 429 and network failures (default 4: five attempts, spec §6.3). */
  maxRetries?: number;
  /** The fetch to use (default: the platform's). */
  fetch?: typeof fetch;
  /** Only "rest" so far. */
  transport?: "rest";
}

export class HeliosDBReplicationClient {
  readonly replications: Replications;

  constructor(options: ClientOptions) {
    if (!options.baseUrl) throw new TypeError("HeliosDBReplicationClient: baseUrl is required, e.g. https://api.heliosdb.com/v1");
    if (options.apiKey && options.token) throw new TypeError("HeliosDBReplicationClient: give apiKey or token, not both");
    const transport: Transport = restTransport({
      baseUrl: options.baseUrl,
      headers: credentials(options),
      timeoutMs: options.timeout ?? 60_000,
      retry: { policy: { ...DEFAULT_RETRY_POLICY, maxAttempts: (options.maxRetries ?? DEFAULT_RETRY_POLICY.maxAttempts - 1) + 1 } },
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.replications = new Replications(transport);
  }
}

function credentials(options: ClientOptions): () => Promise<Record<string, string>> {
  const { apiKey, token } = options;
  return async (): Promise<Record<string, string>> => {
    if (apiKey) return { "x-api-key": apiKey };
    if (typeof token === "function") return { authorization: `Bearer ${await token()}` };
    if (token) return { authorization: `Bearer ${token}` };
    return {};
  };
}
