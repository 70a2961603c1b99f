import { afterAll, beforeAll, expect, test } from "vitest";
import { startCluster, type Cluster } from "./clusters";

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);
afterAll(() => cluster?.stop());

test("a cluster starts with logical decoding on", async () => {
  await cluster.createDatabase("app");
  const client = await cluster.connect("app");
  const { rows } = await client.query("SELECT current_setting('wal_level') AS wal_level, current_database() AS db");
  await client.end();
  expect(rows[0]).toEqual({ wal_level: "logical", db: "app" });
});
