// The Synchronous tier on clusters of its own (the setting is cluster-wide):
// a source commit returns only once the target has committed the change.
import { randomBytes, randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { QoSTier, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ReplicationPipeline } from "./index";
import { startCluster, type Cluster } from "./testing/clusters";
import { seedTenant, waitFor } from "./testing/tenant";
import { MasterKeyProvider } from "./transform/keys";

let source: Cluster;
let target: Cluster;
beforeAll(async () => {
  [source, target] = await Promise.all([startCluster(), startCluster()]);
}, 120_000);
afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
}, 60_000);

test("Synchronous: each source commit waits until the target has applied it; pause releases the source", async () => {
  await Promise.all([source.createDatabase("app"), target.createDatabase("app")]);
  const db = await source.connect("app");
  const replica = await target.connect("app");
  await seedTenant(db, 10);
  const pipeline = new ReplicationPipeline(
    {
      replicationId: randomUUID(),
      tenantId: "tenant-123",
      source: { connection: { connectionString: source.url("app") }, schema: "public" },
      target: { connection: { connectionString: target.url("app") }, schema: "public" },
      config: create(ReplicationConfigSchema, { qosTier: QoSTier.SYNCHRONOUS, encryption: { enabled: true, algorithm: "AES256GCM" } }),
    },
    {
      keys: new MasterKeyProvider(randomBytes(32)),
      // Every batch takes a detour: a commit that did not wait would be seen before it lands.
      transport: async (sealed) => {
        await new Promise((r) => setTimeout(r, 200));
        return sealed;
      },
    },
  );
  try {
    await pipeline.start();
    await pipeline.whenStreaming();
    await waitFor(async () => {
      const { rows } = await db.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", [pipeline.slotName]);
      return rows[0]?.sync_state === "sync";
    }, "the walsender to be the synchronous standby");
    for (let i = 0; i < 5; i++) {
      await db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, $1, 'sync')", [i]);
      const { rowCount } = await replica.query("SELECT 1 FROM orders WHERE status = 'sync' AND amount = $1", [i]);
      expect(rowCount, `row ${i} is on the target when the source commit returns`).toBe(1);
    }
    await pipeline.pause();
    expect((await db.query("SHOW synchronous_standby_names")).rows[0].synchronous_standby_names).toBe("");
    await db.query("SET statement_timeout = '10s'");
    await db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'while paused')");
  } finally {
    await pipeline.stop().catch(() => undefined);
    await Promise.all([db.end(), replica.end()]);
  }
}, 90_000);
