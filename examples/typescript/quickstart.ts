// Spec §9.1 as written, with the base URL and the API key from the
// environment: creates the spec's replication, starts it, and prints its
// lag as the samples stream in (Ctrl-C to stop).
//
//   HELIOSDB_API_KEY=hdb_… HELIOSDB_BASE_URL=http://localhost:8080/v1 npx tsx quickstart.ts
import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";

const client = new HeliosDBReplicationClient({
  apiKey: process.env.HELIOSDB_API_KEY,
  baseUrl: process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1",
});
// Create replication
const replication = await client.replications.create({
  tenantId: "tenant-123",
  source: {
    connectionId: "550e8400-e29b-41d4-a716-446655440001",
    database: "production_db",
  },
  target: {
    connectionId: "550e8400-e29b-41d4-a716-446655440002",
    database: "replica_db",
  },
  config: {
    qosTier: "Premium",
    maxLagSeconds: 5,
    priority: 90,
  },
});
console.log(`Created replication: ${replication.id}`);
// Start replication
await client.replications.start(replication.id);
// Monitor metrics
const metricsStream = client.replications.streamMetrics(replication.id);
metricsStream.on("data", (metrics) => {
  console.log(`Lag: ${metrics.replicationLagSeconds}s`);
});
