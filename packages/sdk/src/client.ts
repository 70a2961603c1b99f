// HeliosDBReplicationClient (spec §9.1): one client, its resources, over a
// transport. Credentials: an API key, a bearer token, or a function that
// gives a token (called before every attempt, so it may refresh one).
import type { Transport as ConnectTransport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./core/retry";
import { clientCredentials, type OAuthClientCredentials } from "./lib/oauth";
import { fromConnectTransport } from "./internal/connect-transport";
import { restTransport, type Transport } from "./internal/transport";
import { abortableFetch } from "./internal/abortable-fetch";
import { platformWebSocket, type WebSocketFactory } from "./internal/web-socket";
import { webSocketStreams } from "./internal/ws-stream";
import { ApiKeys } from "./resources/api-keys";
import { Audit } from "./resources/audit";
import { Connections } from "./resources/connections";
import { Failovers } from "./resources/failovers";
import { Health } from "./resources/health";
import { Metrics } from "./resources/metrics";
import { Migrations } from "./resources/migrations";
import { OAuthClients } from "./resources/oauth-clients";
import { Replications } from "./resources/replications";
import { Routing } from "./resources/routing";
import { Users } from "./resources/users";

export interface ClientOptions {
  /** The API's base URL, `/v1` included: `https://api.heliosdb.com/v1`. */
  baseUrl: string;
  /** X-API-Key (spec §5.2). */
  apiKey?: string | undefined;
  /** Authorization: Bearer — a token, or a function giving one before each attempt (spec §5.1). */
  token?: string | (() => string | Promise<string>) | undefined;
  /**
   * OAuth 2.0 client credentials (spec §5.3): tokens are asked for at the
   * token endpoint (default: `/oauth/token` at the base URL's origin) and
   * renewed before they expire.
   */
  oauth?: (Omit<OAuthClientCredentials, "tokenUrl"> & { tokenUrl?: string }) | undefined;
  /** Milliseconds an attempt may take (default 60,000). */
  timeout?: number;
  /** Retries after the first attempt, on 503, 429 and network failures (default 4: five attempts, spec §6.3). */
  maxRetries?: number;
  /** The fetch to use (default: the platform's). */
  fetch?: typeof fetch;
  /**
   * How calls travel: "rest" (the spec's JSON, default), "connect" or
   * "grpc-web" (binary protobuf, on the same port as REST). Every transport
   * answers the same messages and throws the same errors.
   */
  transport?: "rest" | "connect" | "grpc-web" | ConnectTransportOption;
  /**
   * The WebSocket a REST client's metric and event streams use (spec §4):
   * default the browser's, and `ws` in Node (this package's Node entry).
   * `false`: they use the Connect protocol on the same port instead, as they
   * do anyway in a browser holding an API key (which never goes in a URL).
   */
  webSocket?: WebSocketFactory | false;
}

/** What a platform's entry adds to the client (the Node entry: src/index.node.ts). */
export interface Platform {
  /** A REST connection pool that times out silent sockets itself, for a timeout (src/node/rest-pool.ts). */
  restPool?: (timeoutMs: number) => object | undefined;
}

/** Any Connect-ES transport: gRPC from `@heliosdb/replication-sdk/node` (`grpc(url)`), or one of your own. */
export interface ConnectTransportOption {
  connect: ConnectTransport;
}

export class HeliosDBReplicationClient {
  readonly replications: Replications;
  readonly failovers: Failovers;
  readonly migrations: Migrations;
  readonly metrics: Metrics;
  readonly connections: Connections;
  readonly routing: Routing;
  readonly apiKeys: ApiKeys;
  readonly health: Health;
  readonly audit: Audit;
  readonly oauthClients: OAuthClients;
  readonly users: Users;

  /** @param platform for the platform's entry, not for applications */
  constructor(options: ClientOptions, platform: Platform = {}) {
    if (!options.baseUrl) throw new TypeError("HeliosDBReplicationClient: baseUrl is required, e.g. https://api.heliosdb.com/v1");
    if ([options.apiKey, options.token, options.oauth].filter(Boolean).length > 1) throw new TypeError("HeliosDBReplicationClient: give one credential: apiKey, token or oauth");
    const policy = { ...DEFAULT_RETRY_POLICY, maxAttempts: (options.maxRetries ?? DEFAULT_RETRY_POLICY.maxAttempts - 1) + 1 };
    const transport = transportOf(options, policy, platform);
    this.replications = new Replications(transport, { policy });
    this.failovers = new Failovers(transport);
    this.migrations = new Migrations(transport);
    this.metrics = new Metrics(transport);
    this.connections = new Connections(transport);
    this.routing = new Routing(transport, { policy });
    this.apiKeys = new ApiKeys(transport);
    this.health = new Health(transport);
    this.audit = new Audit(transport);
    this.oauthClients = new OAuthClients(transport);
    this.users = new Users(transport);
  }
}

// The calls' retry policy is the streams' reconnect policy too: one `maxRetries`.
function transportOf(options: ClientOptions, policy: RetryPolicy, platform: Platform): Transport {
  const common = { headers: credentials(options), timeoutMs: options.timeout ?? 60_000, retry: { policy } };
  const kind = options.transport ?? "rest";
  if (typeof kind === "object") return fromConnectTransport(kind.connect, common);
  // Connect and gRPC-web paths are the RPC's full name at the server's root: the base URL without its /v1.
  const root = { baseUrl: options.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, ""), ...(options.fetch ? { fetch: options.fetch } : {}) };
  // Streams read their bodies through abortableFetch, so that abort() closes the connection; unary calls need not pay for it.
  const streamRoot = { ...root, fetch: abortableFetch(options.fetch) };
  if (kind === "rest") {
    // REST has no server streams: a REST client's streams use the WebSocket API, else the Connect protocol on the same port.
    const connectStreams = fromConnectTransport(createConnectTransport(streamRoot), common);
    const webSocket = options.webSocket === false ? undefined : (options.webSocket ?? platformWebSocket());
    const streams = webSocket ? webSocketStreams({ baseUrl: options.baseUrl, headers: common.headers, webSocket }, connectStreams, Boolean(options.apiKey)) : connectStreams;
    // The pool is for the platform's fetch only: a fetch of the application's own may not know what a dispatcher is.
    const fetching = options.fetch ? { fetch: options.fetch } : { pool: platform.restPool?.(common.timeoutMs) };
    return restTransport({ ...common, baseUrl: options.baseUrl, ...fetching }, streams);
  }
  if (kind === "connect") return fromConnectTransport(createConnectTransport(root), common, createConnectTransport(streamRoot));
  if (kind === "grpc-web") return fromConnectTransport(createGrpcWebTransport(root), common, createGrpcWebTransport(streamRoot));
  throw new TypeError(`HeliosDBReplicationClient: unknown transport "${String(kind)}" (rest, connect or grpc-web)`);
}

// The credential headers of an attempt: the same object each time for a fixed credential, a promise only when a token must be got.
function credentials(options: ClientOptions): () => Record<string, string> | Promise<Record<string, string>> {
  const { apiKey, oauth } = options;
  const token = oauth
    ? clientCredentials({ ...oauth, tokenUrl: oauth.tokenUrl ?? `${new URL(options.baseUrl).origin}/oauth/token` }, options.fetch)
    : options.token;
  if (apiKey) {
    const fixed = Object.freeze({ "x-api-key": apiKey });
    return () => fixed;
  }
  if (typeof token === "function") {
    return () => {
      const t = token();
      return typeof t === "string" ? { authorization: `Bearer ${t}` } : t.then((v) => ({ authorization: `Bearer ${v}` }));
    };
  }
  const fixed: Readonly<Record<string, string>> = Object.freeze(token ? { authorization: `Bearer ${token}` } : ({} as Record<string, string>));
  return () => fixed;
}
