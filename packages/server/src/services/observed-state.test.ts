// The one rule for a replication's status and health (views.ts), case by
// case; the suites beside it check it end to end on real servers.
import { describe, expect, test } from "vitest";
import type { ReplicationRow } from "../store/replications";
import { observedState } from "./views";

const NOW = Date.parse("2025-11-02T10:30:00Z");
const STALE_AFTER = 6000;

function row(overrides: Partial<ReplicationRow>, observedAgoMs: number | null = 1000): ReplicationRow {
  return {
    desired: "running",
    status: "Streaming",
    health: "Healthy",
    leaseLive: true,
    figures: observedAgoMs === null ? null : ({ observedAt: new Date(NOW - observedAgoMs).toISOString() } as ReplicationRow["figures"]),
    ...overrides,
  } as ReplicationRow;
}

describe("observedState", () => {
  test("a running replication with a live owner and fresh figures shows what its owner observed", () => {
    expect(observedState(row({ health: "Degraded" }), STALE_AFTER, NOW)).toMatchObject({ status: "Streaming", health: "Degraded", observedAt: new Date(NOW - 1000) });
  });

  test.each([
    ["figures older than the bound", row({}, STALE_AFTER + 1)],
    ["no live lease, however fresh the figures", row({ leaseLive: false }, 0)],
    ["nothing observed yet", row({}, null)],
    ["figures stored before observed_at existed", row({ figures: {} as ReplicationRow["figures"] })],
  ])("a running replication is Unknown, never Healthy, with %s; its status stays the last observed", (_, r) => {
    expect(observedState(r, STALE_AFTER, NOW)).toMatchObject({ status: "Streaming", health: "Unknown" });
  });

  test("a replication that should not run shows the status its request set, whatever its figures' age", () => {
    expect(observedState(row({ desired: "stopped", status: "Stopped", leaseLive: false }, 3_600_000), STALE_AFTER, NOW)).toMatchObject({ status: "Stopped", health: "Healthy" });
    expect(observedState(row({ desired: "paused", status: "Paused" }, 3_600_000), STALE_AFTER, NOW)).toMatchObject({ status: "Paused", health: "Healthy" });
    expect(observedState(row({ desired: "paused", status: "Error", health: "Unhealthy" }), STALE_AFTER, NOW)).toMatchObject({ status: "Error", health: "Unhealthy" });
    expect(observedState(row({ desired: "created", status: "Initializing", leaseLive: false }, null), STALE_AFTER, NOW)).toMatchObject({ status: "Initializing", health: "Healthy" });
  });
});
