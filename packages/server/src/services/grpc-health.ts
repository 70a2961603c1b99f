// gRPC's standard health service (grpc.health.v1.Health), for load balancers,
// Kubernetes gRPC probes and grpc-health-probe: SERVING when the server's own
// HealthService (spec §2.6) says Healthy or Degraded (the server works; some
// replications need attention), NOT_SERVING when it is Unhealthy. It answers
// for the server as a whole (service "") and for each service the router
// serves; any other name is unknown.
import { create, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { HealthRequestSchema, HealthService } from "@heliosdb/replication-proto";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/health/v1/health_pb";

export interface GrpcHealthOptions {
  /** Whether the server is healthy now. */
  healthy: () => Promise<boolean>;
  /** The services that have a status (the server itself, "", always has one). */
  services: () => Iterable<string>;
  /** How often Watch looks again (default 5 s). */
  pollMs?: number;
}

export function grpcHealthService(options: GrpcHealthOptions): ServiceImpl<typeof Health> {
  const pollMs = options.pollMs ?? 5000;
  const known = (service: string) => service === "" || [...options.services()].includes(service);
  const serving = async () => ((await options.healthy().catch(() => false)) ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  return {
    async check(req) {
      if (!known(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status: await serving() };
    },
    // The current status, then again each time it changes, until the client
    // cancels. An unknown service gets SERVICE_UNKNOWN and the call stays
    // open, as the protocol says.
    async *watch(req, ctx) {
      let last: ServingStatus | undefined;
      while (!ctx.signal.aborted) {
        const status = known(req.service) ? await serving() : ServingStatus.SERVICE_UNKNOWN;
        if (ctx.signal.aborted) return;
        if (status !== last) yield { status };
        last = status;
        await sleep(pollMs, ctx.signal);
      }
    },
    async list() {
      const status = await serving();
      const statuses: Record<string, { status: ServingStatus }> = { "": { status } };
      for (const name of options.services()) statuses[name] = { status };
      return { statuses };
    },
  };
}

/** Registers grpc.health.v1.Health on the router, with a status for each service the router serves. */
export function registerGrpcHealth(router: ConnectRouter, healthy: () => Promise<boolean>, pollMs?: number): void {
  const services = () => new Set(router.handlers.map((h) => h.service.typeName));
  router.service(Health, grpcHealthService({ healthy, services, ...(pollMs ? { pollMs } : {}) }));
}

/** Whether a HealthService implementation answers Healthy or Degraded (it throws when the server is Unhealthy). */
export function healthyBy(impl: Pick<ServiceImpl<typeof HealthService>, "health">): () => Promise<boolean> {
  const method = HealthService.method.health;
  return async () => {
    const ctx = createHandlerContext({ service: HealthService as DescService, method, protocolName: "in-process", requestMethod: "POST", url: `/${HealthService.typeName}/${method.name}` });
    try {
      const res = await impl.health(create(HealthRequestSchema), ctx);
      return res.status === "Healthy" || res.status === "Degraded";
    } catch {
      return false;
    }
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
