// GET /metrics: the Prometheus text exposition (prom-client) of this
// server. Each server exports what it observes itself — the replications
// it owns (their live figures, so scraping every server gives each
// replication once), the calls it answered, the streams and sockets it holds
// open, and its process — so a scrape never reads the control plane.
//
// Who may scrape: anyone when the server listens on loopback only, or when
// the operator says so (--metrics-public); otherwise an operator's
// credential (a principal bound to no tenant) with metrics:read. The labels
// name every tenant: a tenant's principal is refused (403), never served a
// filtered copy.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { QoSTierSchema, ReplicationService, restEnumValue, type ReplicationEvent } from "@heliosdb/replication-proto";
import type { Interceptor, StreamResponse } from "@connectrpc/connect";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ObservedFigures } from "@heliosdb/replication-engine";
import type { ReplicationRow } from "../store/replications";
import { holds, type Authenticate } from "./auth";
import { apiError, apiErrorOf, asApiError, envelope } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import { tapStream } from "./invoke-stream";
import type { App } from "./listen";

export const METRICS_PATH = "/metrics";

type Request = Parameters<App>[0];
type Response = Parameters<App>[1];

/** What the exposition reads at each scrape. */
export interface PrometheusSources {
  /** The replications this server runs, with their live figures. */
  owned(): { row: ReplicationRow; figures: ObservedFigures }[];
  /** WebSocket connections open now. */
  openSockets?(): number;
}

export interface PrometheusOptions {
  sources: PrometheusSources;
  /** Serve without credentials (loopback-only listeners, or --metrics-public). */
  public: boolean;
  authenticate: Authenticate;
}

const STATUSES = ["Initializing", "Syncing", "Streaming", "Paused", "Stopped", "Error"];
const REPLICATION_LABELS = ["replication_id", "tenant_id", "qos_tier"] as const;

/** The registry of one server, its call interceptor and its HTTP handler. */
export class Prometheus {
  readonly registry = new Registry();
  private readonly calls: Counter<"rpc" | "protocol" | "code">;
  private readonly latency: Histogram<"rpc" | "protocol" | "code">;
  private readonly streams: Gauge<"protocol">;
  private readonly eventDelivery: Histogram<"protocol">;

  constructor(private readonly options: PrometheusOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.calls = new Counter({ name: "heliosdb_rpc_requests_total", help: "Calls answered, by RPC, protocol and §6 code (OK for success); streams count once, at their start", labelNames: ["rpc", "protocol", "code"], registers });
    this.latency = new Histogram({
      name: "heliosdb_rpc_duration_seconds",
      help: "Time to answer a unary call, from the interceptor chain to the answer",
      labelNames: ["rpc", "protocol", "code"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.streams = new Gauge({ name: "heliosdb_open_streams", help: "Server-streaming calls open now", labelNames: ["protocol"], registers });
    this.eventDelivery = new Histogram({
      name: "heliosdb_event_delivery_seconds",
      help: "From an event's append to the event log (the control plane's clock) to its hand-over to a subscriber's stream here",
      labelNames: ["protocol"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    new Gauge({
      name: "heliosdb_open_websockets",
      help: "WebSocket connections open now",
      registers,
      collect() {
        this.set(options.sources.openSockets?.() ?? 0);
      },
    });
    this.replicationGauges(registers);
  }

  /**
   * Counts and times every call of the chain it heads. `protocol` names the
   * chain's protocol, or reads it from a request (Connect serves several).
   */
  interceptor(protocol: string | ((header: Headers) => string)): Interceptor {
    return (next) => async (req) => {
      const rpc = `${req.method.parent.name}.${req.method.name}`;
      const proto = typeof protocol === "string" ? protocol : protocol(req.header);
      const started = performance.now();
      try {
        const res = await next(req);
        const call = this.call(rpc, proto, "OK");
        call.count.inc();
        if (res.stream) {
          // Events carry when they were appended: each one's delivery lag is observed as it leaves.
          const delivered = req.method === ReplicationService.method.streamReplicationEvents ? (m: unknown) => this.delivered(m as ReplicationEvent, proto) : undefined;
          return this.heldOpen(res, proto, delivered);
        }
        call.latency.observe((performance.now() - started) / 1000);
        return res;
      } catch (e) {
        const call = this.call(rpc, proto, apiErrorOf(asApiError(e))?.code ?? "INTERNAL_ERROR");
        call.count.inc();
        if (!req.stream) call.latency.observe((performance.now() - started) / 1000);
        throw e;
      }
    };
  }

  // The counter and histogram children of one RPC, protocol and code, looked up once (prom-client hashes labels on every call otherwise).
  private readonly children = new Map<string, { count: Counter.Internal; latency: Histogram.Internal<"rpc" | "protocol" | "code"> }>();

  private call(rpc: string, protocol: string, code: string): { count: Counter.Internal; latency: Histogram.Internal<"rpc" | "protocol" | "code"> } {
    const key = `${rpc} ${protocol} ${code}`;
    let child = this.children.get(key);
    if (!child) this.children.set(key, (child = { count: this.calls.labels(rpc, protocol, code), latency: this.latency.labels(rpc, protocol, code) }));
    return child;
  }

  /** Serves GET /metrics; false for every other path. */
  handle(req: Request, res: Response): boolean {
    const url = req.url ?? "/";
    if (!url.startsWith(METRICS_PATH) || (url.length > METRICS_PATH.length && url[METRICS_PATH.length] !== "?")) return false;
    const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
    void (async () => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("Allow", "GET, HEAD");
        throw apiError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${METRICS_PATH}`, { allow: ["GET", "HEAD"] });
      }
      if (!this.options.public) await this.admit(req, requestId);
      const text = await this.registry.metrics();
      res.writeHead(200, { "Content-Type": this.registry.contentType, "Cache-Control": "no-store", "X-Request-Id": requestId });
      if (req.method === "HEAD") res.end();
      else res.end(text);
    })().catch((e: unknown) => {
      if (res.headersSent) return void res.destroy();
      const { status, body } = envelope(asApiError(e), requestId);
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "X-Request-Id": requestId });
      res.end(JSON.stringify(body));
    });
    return true;
  }

  // An operator's credential with metrics:read.
  private async admit(req: Request, requestId: string): Promise<void> {
    const headers = new Headers({ [REQUEST_ID]: requestId });
    for (const name of ["authorization", "x-api-key"]) {
      const value = req.headers[name];
      if (typeof value === "string") headers.set(name, value);
    }
    const principal = await this.options.authenticate(headers, "Prometheus.Scrape");
    if (!holds(principal, "metrics:read")) throw apiError("FORBIDDEN", "scraping /metrics needs the permission metrics:read", { required_permission: "metrics:read" });
    if (principal.tenantId) throw apiError("FORBIDDEN", "/metrics names every tenant's replications: it is for operators (a credential bound to no tenant)");
  }

  private delivered(event: ReplicationEvent, protocol: string): void {
    if (event.timestamp) this.eventDelivery.observe({ protocol }, Math.max(0, Date.now() - timestampMs(event.timestamp)) / 1000);
  }

  // A stream is open from its first answer until its messages end, however they end.
  private heldOpen(res: StreamResponse, protocol: string, each?: (message: unknown) => void): StreamResponse {
    const open = this.streams.labels(protocol);
    open.inc();
    const message = tapStream(
      res.message,
      each
        ? (m) => {
            each(m);
            return m;
          }
        : (m) => m,
      () => open.dec(),
    );
    return { ...res, message };
  }

  // Read at each scrape from the owned replications' live figures: a replication that left this server leaves the exposition.
  private replicationGauges(registers: Registry[]): void {
    const sources = this.options.sources;
    const figure = (name: string, help: string, value: (f: ObservedFigures) => number) =>
      new Gauge({
        name,
        help,
        labelNames: REPLICATION_LABELS,
        registers,
        collect() {
          this.reset();
          for (const { row, figures } of sources.owned()) this.set(labelsOf(row), value(figures));
        },
      });
    figure("heliosdb_replication_lag_seconds", "Seconds since the commit of the oldest source transaction not applied (0 when caught up)", (f) => f.lagSeconds);
    figure("heliosdb_replication_lag_bytes", "Source WAL position minus the applied position, in bytes", (f) => f.lagBytes);
    figure("heliosdb_replication_rows_per_second", "Rows applied per second", (f) => f.rowsPerSecond);
    figure("heliosdb_replication_bytes_per_second", "Bytes applied per second", (f) => f.bytesPerSecond);
    figure("heliosdb_replication_transactions_per_second", "Source transactions applied per second", (f) => f.transactionsPerSecond);
    figure("heliosdb_replication_compression_ratio", "Raw over shipped bytes of change batches", (f) => f.compressionRatio);
    figure("heliosdb_replication_wal_retained_bytes", "WAL the source keeps for the replication's slot", (f) => f.walRetainedBytes);
    new Gauge({
      name: "heliosdb_replication_status",
      help: "1 for the replication's current status, 0 for the others",
      labelNames: [...REPLICATION_LABELS, "status"],
      registers,
      collect() {
        this.reset();
        for (const { row, figures } of sources.owned()) for (const status of STATUSES) this.set({ ...labelsOf(row), status }, figures.status === status ? 1 : 0);
      },
    });
  }
}

function labelsOf(row: ReplicationRow): Record<(typeof REPLICATION_LABELS)[number], string> {
  const tier = QoSTierSchema.values.find((v) => v.number === row.config.qosTier);
  return { replication_id: row.id, tenant_id: row.tenantId, qos_tier: (tier && restEnumValue(tier)) ?? "" };
}

/** The protocol of a call Connect serves, by its content type. */
export function connectProtocol(header: Headers): string {
  const type = header.get("content-type") ?? "";
  if (type.startsWith("application/grpc-web")) return "grpc-web";
  if (type.startsWith("application/grpc")) return "grpc";
  return "connect";
}
