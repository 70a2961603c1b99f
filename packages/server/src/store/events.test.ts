// The event log on a real control plane: events land in the order recorded.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { EventStore } from "./events";

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

test("records each event with its replication, tenant and details, ids ascending in the order recorded", async () => {
  const events = new EventStore(cp.pool);
  const id = randomUUID();
  await events.record({ replicationId: id, tenantId: "tenant-123", type: "StatusChanged", severity: "Info", message: "Syncing", details: { from: "Initializing" } });
  await events.record({ replicationId: id, tenantId: "tenant-123", type: "ReplicationError", severity: "Error", message: "boom", details: {} });
  const { rows } = await cp.pool.query("SELECT tenant_id, event_type, severity, message, details FROM events WHERE replication_id = $1 ORDER BY id", [id]);
  expect(rows).toEqual([
    { tenant_id: "tenant-123", event_type: "StatusChanged", severity: "Info", message: "Syncing", details: { from: "Initializing" } },
    { tenant_id: "tenant-123", event_type: "ReplicationError", severity: "Error", message: "boom", details: {} },
  ]);
});
