// The server assembled: control-plane store, controllers, orchestrator, one
// Connect router for every service, the REST transcoder over the same
// router, and the listeners. Folder order is the request path:
// transport → services → controller → orchestrator → engine.
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { MasterKeyProvider, PgTokenVault, WorkerPool } from "@heliosdb/replication-engine";
import {
  ApiKeyService,
  AuditService,
  ConnectionService,
  FailoverService,
  HealthService,
  MetricsService,
  MigrationService,
  ReplicationService,
  RoutingService,
  services,
} from "@heliosdb/replication-proto";
import type pg from "pg";
import { ApiKeyController } from "./controller/api-keys";
import { AuditController } from "./controller/audit";
import { ConnectionController } from "./controller/connections";
import { NOT_UPDATABLE, ReplicationController } from "./controller/replications";
import { Orchestrator } from "./orchestrator/orchestrator";
import { RoutingController } from "./controller/routing";
import { apiKeyService } from "./services/api-key";
import { auditService } from "./services/audit";
import { connectionService } from "./services/connection";
import { healthyBy, registerGrpcHealth } from "./services/grpc-health";
import { healthService } from "./services/health";
import { replicationService } from "./services/replication";
import { routingService } from "./services/routing";
import { registerUnimplemented } from "./services/unimplemented";
import { ConnectionStore } from "./store/connections";
import { migrate } from "./store/db";
import { EventStore } from "./store/events";
import { HealthProbes } from "./store/health-probes";
import { IdempotencyKeyStore } from "./store/idempotency-keys";
import { LeaseStore } from "./store/leases";
import { MetricSampleStore } from "./store/metric-samples";
import { ReplicationCache } from "./store/replication-cache";
import { ReplicationStore } from "./store/replications";
import { RoutingStore } from "./store/routing";
import { loadMasterKey, SecretBox } from "./store/secrets";
import type { AuditRetention } from "./store/audit-events";
import { authInterceptor, loadSigningKey, ROLE_PERMISSIONS } from "./transport/auth";
import { startCredentials, type Credentials } from "./transport/credentials";
import { jwksHandler } from "./transport/jwks";
import type { ExternalIssuer } from "./transport/jwt";
import type { KeyRingOptions } from "./transport/key-ring";
import { idempotencyInterceptor } from "./transport/idempotency";
import { apiError, envelope } from "./transport/errors";
import { REQUEST_ID, requestIdOf, requestInterceptor } from "./transport/interceptors";
import { grpcHandler } from "./transport/grpc";
import { createInvoker } from "./transport/invoke";
import { listenDual, listenH2c, type App, type Listener } from "./transport/listen";
import { registerReflection } from "./transport/reflection";
import { restHandler, restRoutes } from "./transport/rest";
import { upgradeAuthenticator } from "./transport/upgrade";
import { webSocketGateway } from "./transport/ws";
import { VERSION } from "./version";

export interface AppOptions {
  db: pg.Pool;
  dataDir: string;
  host: string;
  port: number;
  grpcPort: number;
  /** Extra routes served on both ports (e.g. /v1/openapi.yaml, /docs). */
  extra?: (req: Parameters<App>[0], res: Parameters<App>[1]) => Promise<boolean> | boolean;
  /** Initial syncs that may run at once in this process (default 2). */
  workers?: number;
  tickMs?: number;
  /** Seconds a replication's lease lasts without renewal: how soon another server takes over from a dead one (default 15). */
  leaseSeconds?: number;
  /** Retained WAL above which a paused replication warns (default 1 GiB). */
  walRetentionWarningBytes?: number;
  log?: (message: string) => void;
  /** Identity providers whose tokens are trusted (config.ts: --trusted-issuer). */
  issuers?: ExternalIssuer[];
  /** The server's own signing keys: algorithm, rotation, overlap. */
  signingKeys?: KeyRingOptions;
  /** How long, and how many, audit events are kept (default 90 days, 1,000,000). */
  auditRetention?: AuditRetention;
}

export interface RunningApp {
  urls: { rest: string; grpc: string };
  ports: { http: number; grpc: number };
  orchestrator: Orchestrator;
  /** Signing keys, API keys and the audit log of this server. */
  credentials: Credentials;
  close(): Promise<void>;
}

export async function startApp(options: AppOptions): Promise<RunningApp> {
  const log = options.log ?? ((m: string) => console.error(m));
  const startedAt = Date.now();
  let ready = false;
  await migrate(options.db);
  const master = loadMasterKey(options.dataDir);
  const keys = new MasterKeyProvider(master);
  const vault = new PgTokenVault(options.db, keys);
  const connections = new ConnectionStore(options.db, new SecretBox(master));
  const replications = new ReplicationStore(options.db);
  const probes = new HealthProbes(options.db);
  const routing = new RoutingStore(options.db);
  const cache = new ReplicationCache(options.db, replications, log);
  await cache.start();
  const orchestrator = new Orchestrator({
    replications,
    connections,
    leases: new LeaseStore(options.db),
    events: new EventStore(options.db),
    metricSamples: new MetricSampleStore(options.db),
    keys,
    vault,
    pool: new WorkerPool(options.workers ?? 2),
    ...(options.tickMs ? { tickMs: options.tickMs } : {}),
    ...(options.leaseSeconds ? { leaseSeconds: options.leaseSeconds } : {}),
    ...(options.walRetentionWarningBytes ? { walRetentionWarningBytes: options.walRetentionWarningBytes } : {}),
    log,
  });
  const replicationController = new ReplicationController({ replications, connections, orchestrator, keys, vault, cache });
  const connectionController = new ConnectionController(connections, replications);
  const credentials = await startCredentials({
    db: options.db,
    master,
    dataDirKey: loadSigningKey(options.dataDir),
    ...(options.issuers ? { issuers: options.issuers } : {}),
    ...(options.signingKeys ? { signingKeys: options.signingKeys } : {}),
    ...(options.auditRetention ? { auditRetention: options.auditRetention } : {}),
    log,
  });

  const routes = (router: ConnectRouter) => {
    router.service(ReplicationService, replicationService(replicationController, orchestrator));
    router.service(ConnectionService, connectionService(connectionController));
    router.service(RoutingService, routingService(new RoutingController(routing)));
    router.service(ApiKeyService, apiKeyService(new ApiKeyController(credentials.apiKeys, ROLE_PERMISSIONS)));
    router.service(AuditService, auditService(new AuditController(credentials.audit)));
    router.service(HealthService, healthService({ probes, orchestrator, version: VERSION, startedAt, ready: () => ready }));
    registerUnimplemented(router, FailoverService, "failover");
    registerUnimplemented(router, MigrationService, "migration");
    registerUnimplemented(router, MetricsService, "metrics");
    // gRPC's standard health service and server reflection (public, no token).
    registerGrpcHealth(router, healthyBy(healthService({ probes, orchestrator, version: VERSION, startedAt, ready: () => ready })));
    registerReflection(router);
  };
  const interceptors: Interceptor[] = [
    requestInterceptor((e) => log(`internal error: ${(e as Error)?.stack ?? String(e)}`)),
    authInterceptor(credentials.authenticator),
    idempotencyInterceptor(new IdempotencyKeyStore(options.db)),
  ];
  const connect = connectNodeAdapter({
    routes,
    interceptors,
    // Neither an RPC nor a REST route: the same §6 envelope as every other error.
    fallback: (req, res) => {
      const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
      const { status, body } = envelope(apiError("NOT_FOUND", `no such endpoint: ${req.url ?? "/"}`, { path: req.url ?? "/" }), requestId);
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "X-Request-Id": requestId });
      res.end(JSON.stringify(body));
    },
  });
  // REST and gRPC (unary and server-streaming) reach the same implementations through the same interceptors, in process.
  const rest = restHandler(restRoutes(services), createInvoker(routes, interceptors, "rest"), NOT_UPDATABLE);
  const grpc = grpcHandler(services, createInvoker(routes, interceptors, "grpc"));
  const jwks = jwksHandler(credentials.ring);
  const app: App = (req, res) => {
    // Before any protocol reads the request: the audit log's client address, by request id.
    credentials.addresses.register(req, res);
    if ("stream" in req && grpc(req, res as never)) return;
    if (jwks(req, res)) return;
    void (async () => {
      if (options.extra && (await options.extra(req, res))) return;
      if (await rest(req as never, res as never)) return;
      connect(req as never, res as never);
    })().catch((e) => {
      log(`request failed: ${(e as Error).stack}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  };

  // WebSocket upgrades authenticate through the same chain, as calls of the event stream (the permission every channel needs).
  const authenticateUpgrade = upgradeAuthenticator(interceptors, ReplicationService.method.streamReplicationEvents);
  const ws = webSocketGateway((req) => {
    credentials.addresses.registerUpgrade(req);
    return authenticateUpgrade(req);
  });

  const listeners: Listener[] = [
    await listenDual(app, options.host, options.port, ws),
    await listenH2c(app, options.host, options.grpcPort),
  ];
  orchestrator.start();
  ready = true;
  const [httpPort, grpcPort] = listeners.map((l) => l.port) as [number, number];
  return {
    urls: { rest: `http://${options.host}:${httpPort}/v1`, grpc: `http://${options.host}:${grpcPort}` },
    ports: { http: httpPort, grpc: grpcPort },
    orchestrator,
    credentials,
    async close() {
      ready = false;
      for (const l of listeners) await l.close();
      await orchestrator.shutdown();
      await cache.close();
      await credentials.close();
    },
  };
}
