// The server's configuration from one typed source: flags > environment >
// defaults. Printed at start-up with secrets masked.
import { resolve } from "node:path";
import { parseArgs } from "node:util";

export interface ServeConfig {
  host: string;
  port: number;
  grpcPort: number;
  dataDir: string;
  /** An external PostgreSQL for the control plane; absent: embedded under dataDir. */
  databaseUrl?: string;
  demo: boolean;
}

const ENV = {
  host: "HELIOS_HOST",
  port: "HELIOS_PORT",
  grpcPort: "HELIOS_GRPC_PORT",
  dataDir: "HELIOS_DATA_DIR",
  databaseUrl: "HELIOS_DATABASE_URL",
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
    },
    strict: true,
  });
  const port = (flag: string | undefined, name: string, fallback: number) => {
    const text = flag ?? env[name];
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name === ENV.port ? "--port" : "--grpc-port"}: not a port: ${text}`);
    return n;
  };
  const databaseUrl = values["database-url"] ?? env[ENV.databaseUrl];
  return {
    host: values.host ?? env[ENV.host] ?? "127.0.0.1",
    port: port(values.port, ENV.port, 8080),
    grpcPort: port(values["grpc-port"], ENV.grpcPort, 50051),
    dataDir: resolve(values["data-dir"] ?? env[ENV.dataDir] ?? ".heliosdb"),
    ...(databaseUrl ? { databaseUrl } : {}),
    demo: values.demo ?? false,
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
  ].join(" ");
}
