// The transport's options of `serve` (flags > environment > defaults): the
// body and header limits, the timeouts, the origins browsers may call from,
// and the TLS certificate. Read by config.ts's one parseArgs; the values
// reach startApp as AppOptions.transport (bin.ts reads the TLS files).
import { DEFAULT_MAX_BODY_BYTES } from "./transport/guard";
import { DEFAULT_LISTEN } from "./transport/listen";
import { UsageError } from "./config";

export interface TransportConfig {
  maxBodyBytes: number;
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  /** Exact origins, or "*"; empty: no browser may call from another origin. */
  corsOrigins: string[];
  /** PEM files: both, or neither (cleartext). */
  tlsCert?: string;
  tlsKey?: string;
}

/** The flags, for parseArgs. */
export const TRANSPORT_FLAGS = {
  "max-body-bytes": { type: "string" },
  "max-header-bytes": { type: "string" },
  "headers-timeout": { type: "string" },
  "request-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  "cors-origins": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const;

const ENV = {
  "max-body-bytes": "HELIOS_MAX_BODY_BYTES",
  "max-header-bytes": "HELIOS_MAX_HEADER_BYTES",
  "headers-timeout": "HELIOS_HEADERS_TIMEOUT",
  "request-timeout": "HELIOS_REQUEST_TIMEOUT",
  "idle-timeout": "HELIOS_IDLE_TIMEOUT",
  "cors-origins": "HELIOS_CORS_ORIGINS",
  "tls-cert": "HELIOS_TLS_CERT",
  "tls-key": "HELIOS_TLS_KEY",
} as const;

type Flag = keyof typeof ENV;

export function transportConfig(values: Partial<Record<string, unknown>>, env: NodeJS.ProcessEnv): TransportConfig {
  const text = (flag: Flag) => (values[flag] as string | undefined) ?? env[ENV[flag]];
  const bytes = (flag: Flag, fallback: number) => {
    const value = text(flag);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${flag}: not a number of bytes above 0: ${value}`);
    return Number(value);
  };
  const seconds = (flag: Flag, fallbackMs: number) => {
    const value = text(flag);
    if (value === undefined) return fallbackMs;
    if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) throw new UsageError(`--${flag}: not a number of seconds above 0: ${value}`);
    return Number(value) * 1000;
  };
  const origins = (text("cors-origins") ?? "").split(",").map((o) => o.trim()).filter(Boolean);
  for (const origin of origins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) throw new UsageError(`--cors-origins: not an origin (scheme://host[:port]) or "*": ${origin}`);
  }
  const tlsCert = text("tls-cert");
  const tlsKey = text("tls-key");
  if (!tlsCert !== !tlsKey) throw new UsageError("--tls-cert and --tls-key go together: give both, or neither");
  return {
    maxBodyBytes: bytes("max-body-bytes", DEFAULT_MAX_BODY_BYTES),
    maxHeaderBytes: bytes("max-header-bytes", DEFAULT_LISTEN.maxHeaderBytes),
    headersTimeoutMs: seconds("headers-timeout", DEFAULT_LISTEN.headersTimeoutMs),
    requestTimeoutMs: seconds("request-timeout", DEFAULT_LISTEN.requestTimeoutMs),
    idleTimeoutMs: seconds("idle-timeout", DEFAULT_LISTEN.idleTimeoutMs),
    corsOrigins: origins,
    ...(tlsCert && tlsKey ? { tlsCert, tlsKey } : {}),
  };
}

/** The options as printed at start-up (the key's path, never its contents). */
export function describeTransport(t: TransportConfig): string {
  return [
    `max-body-bytes=${t.maxBodyBytes}`,
    `max-header-bytes=${t.maxHeaderBytes}`,
    `headers-timeout=${t.headersTimeoutMs / 1000}s`,
    `request-timeout=${t.requestTimeoutMs / 1000}s`,
    `idle-timeout=${t.idleTimeoutMs / 1000}s`,
    `cors-origins=${t.corsOrigins.join(",") || "(none)"}`,
    `tls=${t.tlsCert ? `${t.tlsCert} (key ${t.tlsKey})` : "off"}`,
  ].join(" ");
}

/** The usage lines of these options. */
export const TRANSPORT_USAGE = `  --max-body-bytes N        HELIOS_MAX_BODY_BYTES     1048576  the largest request body, every protocol (413 beyond)
  --max-header-bytes N      HELIOS_MAX_HEADER_BYTES   16384  request line and headers (431 beyond)
  --headers-timeout SECS    HELIOS_HEADERS_TIMEOUT    10     how long a request's headers may take to arrive
  --request-timeout SECS    HELIOS_REQUEST_TIMEOUT    30     how long a whole request may take to arrive (408 beyond)
  --idle-timeout SECS       HELIOS_IDLE_TIMEOUT       60     how long an idle connection stays open
  --cors-origins LIST       HELIOS_CORS_ORIGINS       (none) origins browsers may call from, comma-separated, or *
  --tls-cert FILE           HELIOS_TLS_CERT                  PEM certificate (chain): HTTPS and h2 on --port, gRPC over TLS on --grpc-port
  --tls-key FILE            HELIOS_TLS_KEY                   its PEM private key`;
