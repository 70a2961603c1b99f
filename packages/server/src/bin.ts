#!/usr/bin/env node
// heliosdb-replication-server: `serve` (the default) runs the server;
// `token` prints a JWT the server accepts.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startApp } from "./app";
import { describeConfig, serveConfig } from "./config";
import { secret, startDemo, type Demo } from "./demo/demo";
import { ConnectionStore } from "./store/connections";
import { createPool, migrate } from "./store/db";
import { startEmbedded, type EmbeddedDatabase } from "./store/embedded";
import { loadMasterKey, SecretBox } from "./store/secrets";
import { issueToken, loadSigningKey } from "./transport/auth";
import { docsHandler } from "./transport/docs";

const USAGE = `usage:
  heliosdb-replication-server [serve] [--host 127.0.0.1] [--port 8080] [--grpc-port 50051]
                              [--data-dir ./.heliosdb] [--database-url postgres://...] [--demo]
  heliosdb-replication-server token --tenant T --roles R [R...] [--permissions P [P...]] [--ttl 1h] [--data-dir ./.heliosdb]`;

async function serve(args: string[]): Promise<void> {
  const config = serveConfig(args);
  mkdirSync(config.dataDir, { recursive: true });
  const log = (line: string) => console.log(line);
  log(`heliosdb-replication-server: ${describeConfig(config)}`);
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbedded(join(config.dataDir, "controlplane"), secret(join(config.dataDir, "controlplane.password")));
    databaseUrl = embedded.url();
  }
  const db = createPool(databaseUrl);
  let demo: Demo | undefined;
  if (config.demo) {
    await migrate(db);
    demo = await startDemo(config.dataDir, db, new ConnectionStore(db, new SecretBox(loadMasterKey(config.dataDir))), log);
  }
  const app = await startApp({ db, dataDir: config.dataDir, host: config.host, port: config.port, grpcPort: config.grpcPort, extra: docsHandler(), log: (m) => console.error(m) });
  log(`REST, Connect, gRPC-web   ${app.urls.rest.replace(/\/v1$/, "")}  (REST under /v1, OpenAPI at /v1/openapi.yaml, docs at /docs)`);
  log(`gRPC, Connect, gRPC-web   ${app.urls.grpc}`);
  log(`a token for curl:         export TOKEN=$(npm run -s token -- --tenant tenant-123 --roles Admin --data-dir ${config.dataDir})`);
  if (demo) {
    log(`demo us-east-1 (source):  ${demo.east.url("production_db")}`);
    log(`demo us-west-2 (target):  ${demo.west.url("replica_db")}`);
    log(`                          (also in ${join(config.dataDir, "demo.json")})`);
  }
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    log("shutting down: pausing replications (their slots are kept), closing listeners");
    await app.close();
    await db.end();
    await demo?.stop();
    await embedded?.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());
}

async function token(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: "string" },
      roles: { type: "string", multiple: true },
      permissions: { type: "string", multiple: true },
      ttl: { type: "string", default: "1h" },
      subject: { type: "string" },
      "data-dir": { type: "string" },
    },
    allowPositionals: true,
  });
  // `--roles Admin Operator` and `--roles Admin --roles Operator` both work.
  const roles = gather(args, "--roles");
  const permissions = gather(args, "--permissions");
  if (roles.length === 0) throw new Error("token: --roles is required (Admin, Operator or Viewer)");
  const dataDir = resolve(values["data-dir"] ?? process.env.HELIOS_DATA_DIR ?? ".heliosdb");
  const jwt = await issueToken(loadSigningKey(dataDir), {
    roles,
    ...(permissions.length ? { permissions } : {}),
    ...(values.tenant ? { tenantId: values.tenant } : {}),
    ...(values.subject ? { subject: values.subject } : {}),
    ttl: values.ttl!,
  });
  console.log(jwt);
}

// Values after a flag, up to the next flag.
function gather(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== flag) continue;
    for (let j = i + 1; j < args.length && !args[j]!.startsWith("--"); j++) out.push(args[j]!);
  }
  return out;
}

const [command, ...args] = process.argv.slice(2);
const run = command === "token" ? token(args) : command === "serve" ? serve(args) : command === undefined || command.startsWith("--") ? serve(process.argv.slice(2)) : Promise.reject(new Error(`unknown command "${command}"\n${USAGE}`));
run.catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
