// The server's configuration from one typed source: flags > environment >
// defaults. Printed at start-up with secrets masked.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseRule } from "./controller/destinations";
import { metricRetention } from "./orchestrator/metrics";
import { DEFAULT_AUDIT_RETENTION, type AuditRetention } from "./store/audit-events";
import { DEFAULT_EVENT_RETENTION, type EventRetention } from "./store/events";
import type { MetricRetention } from "./store/metric-rollups";
import { describeTransport, TRANSPORT_FLAGS, transportConfig, type TransportConfig } from "./transport-config";
import type { ExternalIssuer } from "./transport/jwt";
import { TIER_LIMITS, type Bucket, type RateLimitOptions } from "./transport/rate-limit";

export interface ServeConfig {
  host: string;
  port: number;
  grpcPort: number;
  dataDir: string;
  /** An external PostgreSQL for the control plane; absent: embedded under dataDir. */
  databaseUrl?: string;
  demo: boolean;
  /** How long a stop (SIGTERM, SIGINT) may take before the server exits anyway. */
  shutdownTimeoutMs: number;
  /** Destinations connections may reach although denied (host, address or CIDR, each with an optional :port). */
  allowHosts: string[];
  /** Destinations connections may not reach, besides the default ones (loopback, link-local, metadata). */
  denyHosts: string[];
  /** Body and header limits, timeouts, CORS origins, TLS files (transport-config.ts). */
  transport: TransportConfig;
  /** Identity providers whose tokens the server trusts (--trusted-issuer). */
  issuers: ExternalIssuer[];
  /** Rate limits (spec §7); absent with --rate-limits off. */
  rateLimits?: RateLimitOptions;
  /** Metric samples: the interval between two of a replication, and how long samples and each rollup are kept. */
  metrics: { sampleIntervalMs: number; retention: MetricRetention };
  /** GET /metrics without credentials on a listener beyond loopback. */
  metricsPublic: boolean;
  /** How long, and how many, replication events are kept (older cursors are expired). */
  eventRetention: EventRetention;
  /** How long, and how many, audit events are kept. */
  auditRetention: AuditRetention;
}

/** A command line the server cannot run: printed with the usage, exit status 2. */
export class UsageError extends Error {}

/** node:util parseArgs's own errors about the command line are usage errors too. */
export function isUsageError(e: unknown): boolean {
  return e instanceof UsageError || String((e as { code?: unknown })?.code ?? "").startsWith("ERR_PARSE_ARGS");
}

const ENV = {
  host: "HELIOS_HOST",
  port: "HELIOS_PORT",
  grpcPort: "HELIOS_GRPC_PORT",
  dataDir: "HELIOS_DATA_DIR",
  databaseUrl: "HELIOS_DATABASE_URL",
  shutdownTimeout: "HELIOS_SHUTDOWN_TIMEOUT",
  allowHosts: "HELIOS_ALLOW_HOSTS",
  denyHosts: "HELIOS_DENY_HOSTS",
  trustedIssuers: "HELIOS_TRUSTED_ISSUERS",
  rateLimits: "HELIOS_RATE_LIMITS",
  rateLimit: "HELIOS_RATE_LIMIT",
  defaultTier: "HELIOS_DEFAULT_TIER",
  metricsInterval: "HELIOS_METRICS_INTERVAL",
  metricsRetention: "HELIOS_METRICS_RETENTION",
  metricsPublic: "HELIOS_METRICS_PUBLIC",
  eventRetention: "HELIOS_EVENT_RETENTION",
  auditRetention: "HELIOS_AUDIT_RETENTION",
} as const;

export function serveConfig(args: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      "grpc-port": { type: "string" },
      "data-dir": { type: "string" },
      "database-url": { type: "string" },
      demo: { type: "boolean", default: false },
      "shutdown-timeout": { type: "string" },
      "allow-hosts": { type: "string", multiple: true },
      "deny-hosts": { type: "string", multiple: true },
      ...TRANSPORT_FLAGS,
      "trusted-issuer": { type: "string", multiple: true },
      "rate-limits": { type: "string" },
      "rate-limit": { type: "string", multiple: true },
      "default-tier": { type: "string" },
      "metrics-interval": { type: "string" },
      "metrics-retention": { type: "string" },
      "metrics-public": { type: "string" },
      "event-retention": { type: "string" },
      "audit-retention": { type: "string" },
    },
    strict: true,
  });
  // Comma-separated, from repeated flags or else the environment; each entry checked now, not at the first connection.
  const hosts = (flag: string, given: string[] | undefined, fromEnv: string | undefined) => {
    const entries = (given ?? (fromEnv ? [fromEnv] : [])).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
    for (const entry of entries) {
      try {
        parseRule(entry);
      } catch (e) {
        throw new UsageError(`${flag}: ${(e as Error).message}`);
      }
    }
    return entries;
  };
  const port = (flag: string | undefined, name: string, fallback: number) => {
    const text = flag ?? env[name];
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${name === ENV.port ? "--port" : "--grpc-port"}: not a port: ${text}`);
    return n;
  };
  const seconds = values["shutdown-timeout"] ?? env[ENV.shutdownTimeout] ?? "15";
  if (!/^\d+(\.\d+)?$/.test(seconds) || Number(seconds) <= 0) throw new UsageError(`--shutdown-timeout: not a number of seconds above 0: ${seconds}`);
  const databaseUrl = values["database-url"] ?? env[ENV.databaseUrl];
  const metricsPublic = values["metrics-public"] ?? env[ENV.metricsPublic] ?? "off";
  if (metricsPublic !== "on" && metricsPublic !== "off") throw new UsageError(`--metrics-public: on or off, not ${metricsPublic}`);
  return {
    host: values.host ?? env[ENV.host] ?? "127.0.0.1",
    port: port(values.port, ENV.port, 8080),
    grpcPort: port(values["grpc-port"], ENV.grpcPort, 50051),
    dataDir: resolve(values["data-dir"] ?? env[ENV.dataDir] ?? ".heliosdb"),
    ...(databaseUrl ? { databaseUrl } : {}),
    demo: values.demo ?? false,
    shutdownTimeoutMs: Number(seconds) * 1000,
    allowHosts: hosts("--allow-hosts", values["allow-hosts"], env[ENV.allowHosts]),
    denyHosts: hosts("--deny-hosts", values["deny-hosts"], env[ENV.denyHosts]),
    transport: transportConfig(values, env),
    issuers: (values["trusted-issuer"] ?? env[ENV.trustedIssuers]?.split(";") ?? []).filter((t) => t.trim()).map(trustedIssuer),
    metricsPublic: metricsPublic === "on",
    ...rateLimitConfig(values["rate-limits"] ?? env[ENV.rateLimits], values["rate-limit"] ?? env[ENV.rateLimit]?.split(";"), values["default-tier"] ?? env[ENV.defaultTier]),
    metrics: metricsConfig(values["metrics-interval"] ?? env[ENV.metricsInterval], values["metrics-retention"] ?? env[ENV.metricsRetention]),
    eventRetention: retentionConfig("--event-retention", values["event-retention"] ?? env[ENV.eventRetention], DEFAULT_EVENT_RETENTION),
    auditRetention: retentionConfig("--audit-retention", values["audit-retention"] ?? env[ENV.auditRetention], DEFAULT_AUDIT_RETENTION),
  };
}

/** --event-retention and --audit-retention DAYSd,ROWS (e.g. 30d,1000000): events older, or beyond the newest ROWS, are removed. */
function retentionConfig(flag: string, text: string | undefined, defaults: { maxAgeDays: number; maxRows: number }): { maxAgeDays: number; maxRows: number } {
  if (text === undefined) return defaults;
  const m = /^\s*(\d+)d\s*,\s*(\d+)\s*$/.exec(text);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UsageError(`${flag}: DAYSd,ROWS with both at least 1 (e.g. ${defaults.maxAgeDays}d,${defaults.maxRows}), not ${text}`);
  return { maxAgeDays: Number(m[1]), maxRows: Number(m[2]) };
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * --metrics-interval SECS (default 10) and --metrics-retention
 * NAME=DURATION,… (NAME raw, 1m, 5m, 1h or 1d; DURATION a number with s, m,
 * h or d: raw=48h,1m=14d,5m=35d,1h=400d,1d=1830d by default).
 */
function metricsConfig(interval = "10", retention = ""): ServeConfig["metrics"] {
  if (!/^\d+(\.\d+)?$/.test(interval) || Number(interval) < 0.1) throw new UsageError(`--metrics-interval: not a number of seconds of 0.1 or more: ${interval}`);
  const given: Record<string, number> = {};
  for (const entry of retention.split(",").map((e) => e.trim()).filter(Boolean)) {
    const m = /^(raw|1m|5m|1h|1d)=(\d+)([smhd])$/.exec(entry);
    if (!m) throw new UsageError(`--metrics-retention: NAME=DURATION (NAME raw, 1m, 5m, 1h or 1d; DURATION like 48h or 14d), not ${entry}`);
    given[m[1]!] = Number(m[2]) * UNITS[m[3]!]!;
  }
  try {
    return { sampleIntervalMs: Number(interval) * 1000, retention: metricRetention(given) };
  } catch (e) {
    throw new UsageError(`--metrics-retention: ${(e as Error).message}`);
  }
}

/**
 * --rate-limits on|off (default on), --default-tier TIER (default Standard),
 * and --rate-limit NAME=PER_MINUTE/BURST (repeatable): NAME a tier (Free,
 * Standard, Premium, Enterprise) to resize it, or principal:SUBJECT for one
 * principal's own bucket (an Enterprise customer's).
 */
function rateLimitConfig(onOff = "on", entries: string[] = [], defaultTier = "Standard"): { rateLimits?: RateLimitOptions } {
  if (onOff !== "on" && onOff !== "off") throw new UsageError(`--rate-limits: on or off, not ${onOff}`);
  if (!Object.hasOwn(TIER_LIMITS, defaultTier)) throw new UsageError(`--default-tier: one of ${Object.keys(TIER_LIMITS).join(", ")}, not ${defaultTier}`);
  const tiers: Record<string, Bucket> = {};
  const principals: Record<string, Bucket> = {};
  for (const entry of entries.map((e) => e.trim()).filter(Boolean)) {
    const at = entry.lastIndexOf("=");
    const m = /^(\d+(?:\.\d+)?)\/(\d+)$/.exec(entry.slice(at + 1));
    const name = entry.slice(0, at);
    if (at <= 0 || !m || Number(m[1]) <= 0 || Number(m[2]) < 1) throw new UsageError(`--rate-limit: NAME=PER_MINUTE/BURST (a rate above 0, a burst of 1 or more), not ${entry}`);
    const bucket = { perMinute: Number(m[1]), burst: Number(m[2]) };
    if (name.startsWith("principal:") && name.length > "principal:".length) principals[name.slice("principal:".length)] = bucket;
    else if (Object.hasOwn(TIER_LIMITS, name)) tiers[name] = bucket;
    else throw new UsageError(`--rate-limit: ${name} is neither a tier (${Object.keys(TIER_LIMITS).join(", ")}) nor principal:SUBJECT`);
  }
  return onOff === "off" ? {} : { rateLimits: { tiers, principals, defaultTier } };
}

/**
 * One --trusted-issuer: `issuer=URL,jwks=URL[,audience=A][,tenant-claim=C]
 * [,roles-claim=C][,permissions-claim=C][,unbound=allow]`. Claims may be
 * dotted paths (realm_access.roles). The JWKS URL is https, or http to this
 * machine only (keys fetched in clear text could be anyone's).
 */
export function trustedIssuer(text: string): ExternalIssuer {
  const fields = new Map<string, string>();
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at <= 0) throw new UsageError(`--trusted-issuer: "${part.trim()}" is not name=value`);
    fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const known = ["issuer", "jwks", "audience", "tenant-claim", "roles-claim", "permissions-claim", "unbound"];
  for (const name of fields.keys()) if (!known.includes(name)) throw new UsageError(`--trusted-issuer: unknown field "${name}"; known: ${known.join(", ")}`);
  const issuer = fields.get("issuer");
  const jwks = fields.get("jwks");
  if (!issuer || !jwks) throw new UsageError("--trusted-issuer: issuer= and jwks= are required");
  let url: URL;
  try {
    url = new URL(jwks);
  } catch {
    throw new UsageError(`--trusted-issuer: jwks is not a URL: ${jwks}`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname))) {
    throw new UsageError(`--trusted-issuer: jwks must be an https URL (http only to localhost): ${jwks}`);
  }
  const unbound = fields.get("unbound");
  if (unbound !== undefined && unbound !== "allow" && unbound !== "refuse") throw new UsageError(`--trusted-issuer: unbound is allow or refuse, not ${unbound}`);
  return {
    issuer,
    jwksUrl: jwks,
    audience: fields.get("audience") || "heliosdb-api",
    tenantClaim: fields.get("tenant-claim") || "tenant_id",
    rolesClaim: fields.get("roles-claim") || "roles",
    permissionsClaim: fields.get("permissions-claim") || "permissions",
    allowUnbound: unbound === "allow",
  };
}

/** The configuration as printed: passwords in URLs masked. */
export function describeConfig(config: ServeConfig): string {
  const masked = config.databaseUrl?.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:****@");
  return [
    `host=${config.host}`,
    `port=${config.port}`,
    `grpc-port=${config.grpcPort}`,
    `data-dir=${config.dataDir}`,
    `database-url=${masked ?? "(embedded PostgreSQL under the data dir)"}`,
    `demo=${config.demo}`,
    `shutdown-timeout=${config.shutdownTimeoutMs / 1000}s`,
    `allow-hosts=${config.allowHosts.join(",") || "(none)"}`,
    `deny-hosts=${config.denyHosts.join(",") || "(the defaults only)"}`,
    describeTransport(config.transport),
    ...config.issuers.map((i) => `trusted-issuer=${i.issuer}(jwks ${i.jwksUrl}, audience ${i.audience})`),
    `metrics-interval=${config.metrics.sampleIntervalMs / 1000}s`,
    `metrics-retention=${Object.entries(config.metrics.retention).map(([name, seconds]) => `${name}=${duration(seconds)}`).join(",")}`,
    `metrics-public=${config.metricsPublic ? "on" : "off"}`,
    `event-retention=${config.eventRetention.maxAgeDays}d,${config.eventRetention.maxRows}`,
    `audit-retention=${config.auditRetention.maxAgeDays}d,${config.auditRetention.maxRows}`,
    config.rateLimits ? `rate-limits=on(default-tier ${config.rateLimits.defaultTier}${describeBuckets(config.rateLimits)})` : "rate-limits=off",
  ].join(" ");
}

function duration(seconds: number): string {
  const [unit, size] = Object.entries(UNITS).reverse().find(([, size]) => seconds % size === 0)!;
  return `${seconds / size}${unit}`;
}

function describeBuckets(options: RateLimitOptions): string {
  const all = { ...options.tiers, ...Object.fromEntries(Object.entries(options.principals ?? {}).map(([k, v]) => [`principal:${k}`, v])) };
  return Object.entries(all).map(([name, b]) => `, ${name} ${b!.perMinute}/min burst ${b!.burst}`).join("");
}
