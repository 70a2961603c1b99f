// HealthService (spec §2.6): real checks of what the server depends on. A
// failing check answers SERVICE_UNAVAILABLE (503 over REST) with the checks.
import type { ServiceImpl } from "@connectrpc/connect";
import type { HealthService } from "@heliosdb/replication-proto";
import type pg from "pg";
import type { Orchestrator } from "../orchestrator/orchestrator";
import { apiError } from "../transport/errors";

export interface HealthDeps {
  db: pg.Pool;
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
        database: await check(() => deps.db.query("SELECT 1")),
        // Events are delivered through the control-plane database's event log.
        message_queue: await check(() => deps.db.query("SELECT max(id) FROM events")),
        worker_pool: deps.orchestrator.healthy ? "Healthy" : "Unhealthy",
      };
      const healthy = Object.values(checks).every((c) => c === "Healthy");
      const body = { status: healthy ? "Healthy" : "Unhealthy", version: deps.version, uptimeSeconds: BigInt(Math.floor((Date.now() - deps.startedAt) / 1000)), checks };
      if (!healthy) throw apiError("SERVICE_UNAVAILABLE", "a health check failed", { ...checks, status: body.status });
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
