// Follows a tenant's replication events and survives everything between it
// and the server: a dropped connection, a server restart, another server
// behind the load balancer. The SDK reconnects with backoff and resumes
// after the last event it delivered, so each event arrives once; this
// example also keeps that cursor in a file, so that the program itself can
// be stopped and started again without missing or repeating an event.
//
//   HELIOSDB_API_KEY=hdb_… HELIOSDB_BASE_URL=http://localhost:8080/v1 npx tsx stream-events.ts
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";

const client = new HeliosDBReplicationClient({
  apiKey: process.env.HELIOSDB_API_KEY,
  baseUrl: process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1",
  maxRetries: 10, // reconnects in a row before the stream gives up
});
const cursorFile = process.env.HELIOSDB_CURSOR_FILE ?? "events.cursor";
const cursor = existsSync(cursorFile) ? readFileSync(cursorFile, "utf8").trim() : undefined;

const events = client.replications.streamEvents({
  tenantId: process.env.HELIOSDB_TENANT_ID ?? "tenant-123",
  ...(cursor ? { cursor } : {}), // strictly after the last event this program handled
});
events.on("reconnect", ({ attempt, delayMs, error }) => {
  console.log(`Reconnecting (attempt ${attempt}, in ${delayMs} ms): ${(error as Error).message}`);
});

for await (const event of events) {
  console.log(`${event.timestamp ? new Date(Number(event.timestamp.seconds) * 1000).toISOString() : ""} ${event.severity} ${event.eventType}: ${event.message}`);
  writeFileSync(cursorFile, event.cursor);
}
