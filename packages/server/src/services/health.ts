// HealthService (spec §2.6): real checks of what the server depends on, and
// of the replications as the orchestrators see them. The mapping:
// - database, message_queue or worker_pool failing: Unhealthy, answered as
//   SERVICE_UNAVAILABLE (503 over REST) with the checks: this server cannot
//   do its work.
// - replications in Error, or that should run without a live owner (no live
//   lease, or figures older than the staleness bound): Degraded, answered
//   200 with the counts: the server works, replications need attention.
import type { ServiceImpl } from "@connectrpc/connect";
import type { HealthService } from "@heliosdb/replication-proto";
import type { Orchestrator } from "../orchestrator/orchestrator";
import type { HealthProbes } from "../store/health-probes";
import { apiError } from "../transport/errors";

export interface HealthDeps {
  probes: HealthProbes;
  orchestrator: Orchestrator;
  version: string;
  startedAt: number;
  /** True once migrations have run and the orchestrator has started. */
  ready: () => boolean;
}

export function healthService(deps: HealthDeps): ServiceImpl<typeof HealthService> {
  const check = async (probe: () => Promise<unknown>) => {
    try {
      await withTimeout(probe(), 2000);
      return "Healthy";
    } catch {
      return "Unhealthy";
    }
  };
  return {
    async health() {
      const checks: Record<string, string> = {
        database: await check(() => deps.probes.database()),
        // Events are delivered through the control-plane database's event log.
        message_queue: await check(() => deps.probes.eventLog()),
        worker_pool: deps.orchestrator.healthy ? "Healthy" : "Unhealthy",
      };
      const census = await withTimeout(deps.orchestrator.census(), 2000).catch(() => undefined);
      checks.replications = !census ? "Unknown" : census.error > 0 || census.unowned > 0 ? "Degraded" : "Healthy";
      const unhealthy = ["database", "message_queue", "worker_pool"].some((name) => checks[name] !== "Healthy");
      const status = unhealthy ? "Unhealthy" : checks.replications === "Healthy" ? "Healthy" : "Degraded";
      const replications = census ?? {};
      const body = { status, version: deps.version, uptimeSeconds: BigInt(Math.floor((Date.now() - deps.startedAt) / 1000)), checks, replications };
      if (unhealthy) throw apiError("SERVICE_UNAVAILABLE", "a health check failed", { ...checks, status });
      return body;
    },
    async ready() {
      if (!deps.ready()) throw apiError("SERVICE_UNAVAILABLE", "not ready: migrations or the orchestrator have not started", { ready: false });
      return { ready: true };
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error("timeout")), ms).unref())]);
}
