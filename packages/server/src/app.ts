// The server assembled: control-plane store, controllers, orchestrator, one
// Connect router for every service, the REST transcoder over the same
// router, and the listeners. Folder order is the request path:
// transport → services → controller → orchestrator → engine.
import { setTimeout as sleep } from "node:timers/promises";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { MasterKeyProvider, PgTokenVault, WorkerPool } from "@heliosdb/replication-engine";
import {
  ApiKeyService,
  AuditService,
  ConnectionService,
  FailoverService,
  HealthService,
  MetricsService,
  MigrationService,
  OAuthClientService,
  ReplicationService,
  RoutingService,
  services,
  UserService,
} from "@heliosdb/replication-proto";
import type pg from "pg";
import { ApiKeyController } from "./controller/api-keys";
import { AuditController } from "./controller/audit";
import { ConnectionController } from "./controller/connections";
import { MetricsController } from "./controller/metrics";
import { DestinationPolicy } from "./controller/destinations";
import { NOT_UPDATABLE, ReplicationController } from "./controller/replications";
import type { FailoverOptions } from "./controller/failover/deps";
import { AutomaticFailoverMonitor } from "./controller/failover/automatic";
import { failoverKind } from "./controller/failover/kind";
import { FailoverController } from "./controller/failovers";
import type { MigrationOptions } from "./controller/migration/deps";
import { migrationKind } from "./controller/migration/kind";
import { carrierRequest, MigrationController } from "./controller/migrations";
import { metricRetention, metricsMaintenance, type MetricsOptions } from "./orchestrator/metrics";
import type { JobKind } from "./orchestrator/job-kind";
import { Orchestrator } from "./orchestrator/orchestrator";
import { RoutingController } from "./controller/routing";
import { RoutingFeed } from "./controller/routing-feed";
import { apiKeyService } from "./services/api-key";
import { auditService } from "./services/audit";
import { connectionService } from "./services/connection";
import { failoverService } from "./services/failover";
import { migrationService } from "./services/migration";
import { healthyBy, registerGrpcHealth } from "./services/grpc-health";
import { healthService } from "./services/health";
import { metricsService } from "./services/metrics";
import { oauthClientService, userService } from "./services/oauth";
import { replicationService } from "./services/replication";
import { routingService } from "./services/routing";
import { ConnectionGrantStore } from "./store/connection-grants";
import { ConnectionStore } from "./store/connections";
import { controlPlaneDatabase } from "./store/control-plane";
import { migrate } from "./store/db";
import { EventStore, type EventRetention } from "./store/events";
import { FailoverStore } from "./store/failovers";
import { MigrationStore } from "./store/tenant-migrations";
import { Notices } from "./store/notices";
import { EventFeed } from "./controller/event-feed";
import { MetricFeed } from "./controller/metric-feed";
import { observedState } from "./services/views";
import { HealthProbes } from "./store/health-probes";
import { IdempotencyKeyStore } from "./store/idempotency-keys";
import { JobSignals, JOBS_CHANNEL } from "./store/job-signals";
import { JobStore } from "./store/jobs";
import { LeaseStore } from "./store/leases";
import { MetricRollupStore } from "./store/metric-rollups";
import { MetricSampleStore } from "./store/metric-samples";
import { RateLimitStore } from "./store/rate-limits";
import { ReplicationCache, replicationNotices } from "./store/replication-cache";
import { ReplicationStore } from "./store/replications";
import { ROUTING_CHANNEL, routingNotice, RoutingStore } from "./store/routing";
import { loadMasterKey, SecretBox } from "./store/secrets";
import type { AuditRetention } from "./store/audit-events";
import { authInterceptors, loadSigningKey, ROLE_PERMISSIONS } from "./transport/auth";
import { CREDENTIALS_CHANNEL, startCredentials, type Credentials } from "./transport/credentials";
import { jwksHandler } from "./transport/jwks";
import { oauthServer } from "./transport/oauth";
import type { ExternalIssuer } from "./transport/jwt";
import type { KeyRingOptions } from "./transport/key-ring";
import { connectHandler } from "./transport/connect";
import { corsHandler } from "./transport/cors";
import { idempotencyInterceptor } from "./transport/idempotency";
import { asApiError, envelope } from "./transport/errors";
import { createGuard } from "./transport/guard";
import { connectProtocol, Prometheus } from "./transport/prometheus";
import { inputInterceptor } from "./transport/input";
import { countRefusal, limitRefusals, RateLimiter, rateLimitInterceptor, type RateLimitOptions } from "./transport/rate-limit";
import { arrivalInterceptor, REQUEST_ID, requestIdOf, requestInterceptor } from "./transport/interceptors";
import { grpcHandler } from "./transport/grpc";
import { createInvoker } from "./transport/invoke";
import { listenDual, listenH2c, type App, type Listener, type ListenOptions } from "./transport/listen";
import { registerReflection } from "./transport/reflection";
import { restHandler, restRoutes } from "./transport/rest";
import { upgradeAuthenticator } from "./transport/upgrade";
import { WebSocketGateway, type WebSocketOptions } from "./transport/ws";
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
  /**
   * Destinations connections may reach although the policy denies them by
   * default (loopback, link-local, cloud metadata): `host[:port]`,
   * `address[:port]`, `cidr[:port]` (controller/destinations.ts).
   */
  allowHosts?: string[];
  /** Destinations connections may not reach, besides the defaults. */
  denyHosts?: string[];
  log?: (message: string) => void;
  /** Identity providers whose tokens are trusted (config.ts: --trusted-issuer). */
  issuers?: ExternalIssuer[];
  /** The server's own signing keys: algorithm, rotation, overlap. */
  signingKeys?: KeyRingOptions;
  /** How long, and how many, replication events are kept (default 30 days, 1,000,000): older cursors are expired. */
  eventRetention?: EventRetention;
  /** How long, and how many, audit events are kept (default 90 days, 1,000,000). */
  auditRetention?: AuditRetention;
  /** Body limit, timeouts, header limit, CORS origins, TLS (docs/server.md, "Limits, timeouts, CORS and TLS"). */
  transport?: TransportOptions;
  /** Heartbeat, idle timeout and buffer bounds of WebSocket connections (transport/ws.ts). */
  webSocket?: WebSocketOptions;
  /** GET /metrics without credentials although the server listens beyond loopback (--metrics-public). */
  metricsPublic?: boolean;
  /** Rate limits (spec §7, transport/rate-limit.ts): on when given (`serve` always gives them), off when absent. */
  rateLimits?: RateLimitOptions;
  /** Metric samples: their interval (default 10 s), rollup passes, retention (docs/observability.md). */
  metrics?: MetricsOptions;
  /** Kinds of step-machine job the orchestrator runs besides failovers (orchestrator/job-kind.ts; tests register their own). */
  jobKinds?: JobKind[];
  /** How failovers fence, drain and probe (controller/failover/deps.ts); tests hold their steps. */
  failover?: FailoverOptions;
  /** How migrations poll, fence and drain (controller/migration/deps.ts); tests hold their phases. */
  migration?: MigrationOptions;
}

export interface TransportOptions extends Partial<ListenOptions> {
  /** The largest request body on every protocol, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Origins browsers may call from (CORS): exact origins, or "*"; none by default. */
  corsOrigins?: string[];
}

export interface RunningApp {
  /** http:// (https:// with TLS) URLs of the REST API and the gRPC port. */
  urls: { rest: string; grpc: string };
  ports: { http: number; grpc: number };
  orchestrator: Orchestrator;
  /** Signing keys, API keys and the audit log of this server. */
  credentials: Credentials;
  /** The event, metric and routing feeds behind the streams (and their open subscriptions). */
  feeds: { events: EventFeed; metrics: MetricFeed; routing: RoutingFeed };
  close(): Promise<void>;
}

/** Whether a listen address reaches this host only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export async function startApp(options: AppOptions): Promise<RunningApp> {
  const log = options.log ?? ((m: string) => console.error(m));
  const startedAt = Date.now();
  let ready = false;
  await migrate(options.db);
  const retention = metricRetention(options.metrics?.retention);
  const master = loadMasterKey(options.dataDir);
  const keys = new MasterKeyProvider(master);
  const vault = new PgTokenVault(options.db, keys);
  const destinations = new DestinationPolicy({ allow: options.allowHosts ?? [], deny: options.denyHosts ?? [] });
  // Every session on a tenant's database connects through the policy's socket.
  const connections = new ConnectionStore(options.db, new SecretBox(master), destinations.stream);
  const grants = new ConnectionGrantStore(options.db);
  const replications = new ReplicationStore(options.db);
  const probes = new HealthProbes(options.db);
  const routing = new RoutingStore(options.db);
  // The replication cache's LISTEN session, also the credentials' (API keys, signing keys, OAuth grants): the
  // rate-limit decisions run on it (store/rate-limits.ts), and one decision, sent after a call arrived, catches
  // both caches up for that call (transport/auth.ts, identify then confirm).
  // It also hears which job another server's control request changed (store/job-signals.ts).
  const cacheSession = replicationNotices(options.db, log, [CREDENTIALS_CHANNEL, JOBS_CHANNEL]);
  await cacheSession.start();
  const cache = new ReplicationCache(replications, cacheSession);
  const events = new EventStore(options.db, options.eventRetention);
  // One LISTEN session per server wakes every event stream it serves.
  const eventNotices = new Notices(options.db, EVENTS_CHANNEL, "heliosdb-event-feed", log);
  await eventNotices.start();
  const eventPruning = pruneEvents(events, log);
  // And one wakes every routing watch (failover and migration announce each change with its row).
  const routingNotices = new Notices(options.db, ROUTING_CHANNEL, "heliosdb-routing-feed", log);
  await routingNotices.start();
  const failovers = new FailoverStore(options.db);
  // The failover kind acts through the orchestrator that runs it, and the replication controller's rules (both made below).
  const failover = failoverKind({
    ...options.failover,
    replications,
    failovers,
    routing,
    connections,
    events,
    orchestrator: () => orchestrator,
    reverse: {
      create: (forward, failoverId, tables) => replicationController.createReverse(forward, failoverId, tables),
      remove: (id) => replicationController.delete(undefined, id, false),
    },
    log,
  });
  const leases = new LeaseStore(options.db);
  const migrations = new MigrationStore(options.db);
  // The migration kind likewise: its carrier replication is created and removed by the replication controller's rules.
  const migration = migrationKind({
    ...options.migration,
    migrations,
    replications,
    routing,
    connections,
    events,
    orchestrator: () => orchestrator,
    carrier: {
      create: async (m, tables) =>
        (await replicationController.migrationCarrier(carrierRequest(m.tenantId, m.source!, m.target!, tables), m.id, m.config.bulkCopyParallelism || 4))!,
      remove: (id) => replicationController.removeCarrier(id),
    },
    log,
  });
  const orchestrator: Orchestrator = new Orchestrator({
    replications,
    connections,
    leases,
    events,
    metricSamples: new MetricSampleStore(options.db),
    jobs: new JobStore(options.db),
    jobKinds: [failover, migration, ...(options.jobKinds ?? [])],
    signals: { send: new JobSignals(options.db), notices: cacheSession },
    keys,
    vault,
    pool: new WorkerPool(options.workers ?? 2),
    ...(options.tickMs ? { tickMs: options.tickMs } : {}),
    ...(options.leaseSeconds ? { leaseSeconds: options.leaseSeconds } : {}),
    ...(options.walRetentionWarningBytes ? { walRetentionWarningBytes: options.walRetentionWarningBytes } : {}),
    ...(options.metrics?.sampleIntervalMs ? { sampleIntervalMs: options.metrics.sampleIntervalMs } : {}),
    log,
  });
  const rollups = new MetricRollupStore(options.db);
  const maintenance = metricsMaintenance({
    retention,
    rollups,
    ...(options.metrics?.maintenanceIntervalMs ? { intervalMs: options.metrics.maintenanceIntervalMs } : {}),
    log,
  });
  // Read once, at the first create that needs it (a failed read is tried again).
  let controlPlane: ReturnType<typeof controlPlaneDatabase> | undefined;
  const controlPlaneOnce = () => (controlPlane ??= controlPlaneDatabase(options.db).catch((e) => ((controlPlane = undefined), Promise.reject(e))));
  const replicationController = new ReplicationController({ replications, connections, grants, controlPlane: controlPlaneOnce, orchestrator, keys, vault, cache, events, failovers, migrations });
  const failoverController = new FailoverController({ failovers, replications: replicationController, routing, events, orchestrator, migrations });
  const migrationController = new MigrationController({ migrations, failovers, replications: replicationController, connections, grants, routing, events, orchestrator });
  // Decided by the server that runs the replication, through the manual path (controller/failover/automatic.ts).
  const automaticFailover = new AutomaticFailoverMonitor({
    owned: () => orchestrator.ownedFigures(),
    holdsLease: (id) => leases.holds(id, orchestrator.nodeId),
    ...{ replications, connections, failovers, events, log },
    trigger: (request) => failoverController.trigger(undefined, request),
    ...(options.failover?.probeTimeoutMs ? { probeTimeoutMs: options.failover.probeTimeoutMs } : {}),
  });
  const staleAfter = orchestrator.staleAfterMs;
  const feeds = {
    events: new EventFeed({ events, notices: eventNotices, checkReplication: (caller, id) => replicationController.get(caller, id, { cached: true }) }),
    metrics: new MetricFeed({
      get: (caller, id) => replicationController.get(caller, id, { cached: true }),
      latest: (caller, id) => replicationController.latest(caller, id),
      observe: (row) => observedState(row, staleAfter),
      onChange: (handler) => cache.onChange(handler),
    }),
    routing: new RoutingFeed({ read: (tenantId) => routing.get(tenantId), notice: routingNotice, notices: routingNotices }),
  };
  const connectionController = new ConnectionController({ connections, grants, replications, destinations });
  const credentials = await startCredentials({
    db: options.db,
    master,
    dataDirKey: loadSigningKey(options.dataDir),
    notices: cacheSession,
    ...(options.issuers ? { issuers: options.issuers } : {}),
    ...(options.signingKeys ? { signingKeys: options.signingKeys } : {}),
    ...(options.auditRetention ? { auditRetention: options.auditRetention } : {}),
    log,
  });
  const limiter = options.rateLimits ? new RateLimiter(new RateLimitStore(options.db, cacheSession), options.rateLimits) : undefined;
  // OAuth 2.0 (spec §5.3): the token endpoint and the login pages, and the services that manage clients and users.
  const oauth = oauthServer({
    db: options.db,
    master,
    signingKey: () => credentials.ring.currentKey(),
    authenticate: credentials.authenticator.authenticate,
    audit: credentials.audit,
    addressOf: (id) => credentials.addresses.of(id),
    rolePermissions: ROLE_PERMISSIONS,
    ...(limiter ? { limitAddress: (address: string) => limiter.admitAddress(address) } : {}),
    tls: !!options.transport?.tls,
    log,
  });

  const routes = (router: ConnectRouter) => {
    router.service(ReplicationService, replicationService(replicationController, orchestrator, feeds));
    router.service(ConnectionService, connectionService(connectionController));
    router.service(RoutingService, routingService(new RoutingController(routing, feeds.routing)));
    router.service(ApiKeyService, apiKeyService(new ApiKeyController(credentials.apiKeys, ROLE_PERMISSIONS)));
    router.service(AuditService, auditService(new AuditController(credentials.audit)));
    router.service(OAuthClientService, oauthClientService(oauth.controller));
    router.service(UserService, userService(oauth.controller));
    router.service(MetricsService, metricsService(new MetricsController({ replications: replicationController, rollups, retention })));
    router.service(HealthService, healthService({ probes, orchestrator, version: VERSION, startedAt, ready: () => ready }));
    router.service(FailoverService, failoverService(failoverController));
    router.service(MigrationService, migrationService(migrationController));
    // gRPC's standard health service and server reflection (public, no token).
    registerGrpcHealth(router, healthyBy(healthService({ probes, orchestrator, version: VERSION, startedAt, ready: () => ready })));
    registerReflection(router);
  };
  const addressOf = (requestId: string | null) => credentials.addresses.of(requestId);
  // Refused credentials count against the client's address where they are refused: before the body is read.
  // Identified, not yet confirmed: the interceptors confirm before the call runs.
  const identify = credentials.authenticator.identify;
  const authenticate = limiter ? limitRefusals(identify, limiter, addressOf) : identify;
  const logError = (e: unknown, requestId: string) => log(`internal error (request ${requestId}): ${(e as Error)?.stack ?? String(e)}`);
  const interceptors: Interceptor[] = [
    arrivalInterceptor(cacheSession),
    requestInterceptor(logError),
    // Identify the caller, count the call against its bucket, then confirm who it is: the decision's round trip,
    // on the session that also hears credentials change, is the one confirming needs (transport/auth.ts).
    ...authInterceptors(credentials.authenticator, limiter ? [rateLimitInterceptor(limiter)] : []),
    inputInterceptor(),
    idempotencyInterceptor(new IdempotencyKeyStore(options.db)),
  ];
  // The Prometheus exposition; its interceptor heads each protocol's chain, so every call is counted once, by protocol.
  const prometheus = new Prometheus({
    sources: { owned: () => orchestrator.ownedFigures(), openSockets: (): number => ws.open },
    public: !!options.metricsPublic || isLoopback(options.host),
    authenticate: credentials.authenticator.authenticate,
  });
  const counted = (protocol: Parameters<Prometheus["interceptor"]>[0]) => [prometheus.interceptor(protocol), ...interceptors];
  // Every protocol admits a call by the same credentials check before it reads the body, and bounds the body.
  const guard = createGuard({ authenticate, log: logError, ...(options.transport?.maxBodyBytes ? { maxBodyBytes: options.transport.maxBodyBytes } : {}) });
  const connect = connectHandler({ routes, interceptors: counted(connectProtocol), guard });
  // REST and gRPC (unary and server-streaming) reach the same implementations through the same interceptors, in process.
  const rest = restHandler(restRoutes(services), createInvoker(routes, counted("rest"), "rest"), guard, NOT_UPDATABLE);
  const grpc = grpcHandler(services, createInvoker(routes, counted("grpc"), "grpc"), guard);
  const cors = corsHandler(options.transport?.corsOrigins ?? []);
  const jwks = jwksHandler(credentials.ring);
  const app: App = (req, res) => {
    if (cors(req, res)) return;
    // Before any protocol reads the request: the audit log's client address, by request id.
    credentials.addresses.register(req, res);
    if ("stream" in req && grpc(req, res as never)) return;
    if (jwks(req, res)) return;
    if (prometheus.handle(req, res)) return;
    if (oauth.handle(req, res)) return;
    void (async () => {
      if (options.extra && (await options.extra(req, res))) return;
      if (await rest(req as never, res as never)) return;
      connect(req, res);
    })().catch((e: unknown) => {
      const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
      logError(e, requestId);
      if (res.headersSent) return void res.destroy();
      const { status, body } = envelope(asApiError(e), requestId);
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "X-Request-Id": requestId }).end(JSON.stringify(body));
    });
  };

  // WebSocket upgrades authenticate through the same chain, as calls of the event stream (the permission every channel needs).
  const authenticateUpgrade = upgradeAuthenticator(interceptors, ReplicationService.method.streamReplicationEvents);
  // Each subscription of a socket is a call of a streaming RPC, through the same interceptors.
  const ws = new WebSocketGateway(async (req) => {
    credentials.addresses.registerUpgrade(req);
    // An upgrade is refused by the chain itself (no guard before it): its refusal is counted here.
    if (!limiter) return authenticateUpgrade(req);
    try {
      return await authenticateUpgrade(req);
    } catch (e) {
      throw await countRefusal(e, limiter, req.socket.remoteAddress ?? "");
    }
  }, createInvoker(routes, counted("websocket"), "websocket"), options.webSocket);

  const listeners: Listener[] = [
    await listenDual(app, options.host, options.port, ws.handle, options.transport),
    await listenH2c(app, options.host, options.grpcPort, options.transport),
  ];
  // Ready once the first pass has run (health reports its outcome), or after a pass's period if it takes longer.
  await Promise.race([orchestrator.start(), sleep(options.tickMs ?? 2000)]);
  maintenance.start();
  automaticFailover.start(options.tickMs ?? 2000);
  ready = true;
  const [httpPort, grpcPort] = listeners.map((l) => l.port) as [number, number];
  const scheme = options.transport?.tls ? "https" : "http";
  return {
    urls: { rest: `${scheme}://${options.host}:${httpPort}/v1`, grpc: `${scheme}://${options.host}:${grpcPort}` },
    ports: { http: httpPort, grpc: grpcPort },
    orchestrator,
    credentials,
    feeds,
    async close() {
      ready = false;
      ws.close();
      for (const l of listeners) await l.close();
      await maintenance.stop();
      await automaticFailover.stop();
      await orchestrator.shutdown();
      clearInterval(eventPruning);
      await eventNotices.close();
      await routingNotices.close();
      await credentials.close();
      await cacheSession.close();
    },
  };
}

const EVENTS_CHANNEL = "heliosdb_events";
const PRUNE_EVERY_MS = 3_600_000;

// Retention runs on every server, at start and hourly: pruning is idempotent, and whichever runs first does the work.
function pruneEvents(events: EventStore, log: (message: string) => void): NodeJS.Timeout {
  const prune = () => void events.prune().catch((e) => log(`event log: retention failed: ${(e as Error).message}`));
  prune();
  const timer = setInterval(prune, PRUNE_EVERY_MS);
  timer.unref();
  return timer;
}
