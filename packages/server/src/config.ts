// The server's configuration from one typed source: flags > environment >
// defaults. Printed at start-up with secrets masked.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeTransport, TRANSPORT_FLAGS, transportConfig, type TransportConfig } from "./transport-config";

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
  /** Body and header limits, timeouts, CORS origins, TLS files (transport-config.ts). */
  transport: TransportConfig;
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
      ...TRANSPORT_FLAGS,
    },
    strict: true,
  });
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
  return {
    host: values.host ?? env[ENV.host] ?? "127.0.0.1",
    port: port(values.port, ENV.port, 8080),
    grpcPort: port(values["grpc-port"], ENV.grpcPort, 50051),
    dataDir: resolve(values["data-dir"] ?? env[ENV.dataDir] ?? ".heliosdb"),
    ...(databaseUrl ? { databaseUrl } : {}),
    demo: values.demo ?? false,
    shutdownTimeoutMs: Number(seconds) * 1000,
    transport: transportConfig(values, env),
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
    describeTransport(config.transport),
  ].join(" ");
}
