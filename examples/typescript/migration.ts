// Migrates a tenant live to another region (spec §2.4) and prints its phases'
// progress as the server reports it on the event stream: the bulk copy's
// percentage and estimated completion, the catch-up's lag, the cutover and
// its measured downtime. (The stream starts with the events appended once it
// is connected; what happened before — and the end, should the connection
// miss it — is read with GetMigrationStatus.)
//
//   HELIOSDB_API_KEY=hdb_… HELIOSDB_BASE_URL=http://localhost:8080/v1 \
//   HELIOSDB_TENANT_ID=tenant-123 HELIOSDB_SOURCE_REGION=us-east-1 HELIOSDB_TARGET_REGION=us-west-2 \
//   HELIOSDB_TARGET_DATABASE=production_db npx tsx migration.ts
import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";

const client = new HeliosDBReplicationClient({
  apiKey: process.env.HELIOSDB_API_KEY,
  baseUrl: process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1",
});
const tenantId = process.env.HELIOSDB_TENANT_ID ?? "tenant-123";

// Listening first (reading begins with the first 'data' listener): the tenant's migration events from now on,
// kept until the migration's id is known (a migration's events name it in details.migration_id).
const events = client.replications.streamEvents({
  tenantId,
  eventTypes: ["MigrationStarted", "MigrationPhase", "MigrationProgress", "MigrationCompleted", "MigrationFailed", "MigrationCancelled"],
});
type Event = { eventType: string; details: Record<string, string> };
let show: (event: Event) => void;
const early: Event[] = [];
events.on("data", (event) => (show ? show(event) : early.push(event)));
events.on("error", (e) => console.error(`event stream: ${e.message}`));

const migration = await client.migrations.start({
  tenantId,
  sourceRegion: process.env.HELIOSDB_SOURCE_REGION ?? "us-east-1",
  targetRegion: process.env.HELIOSDB_TARGET_REGION ?? "us-west-2",
  ...(process.env.HELIOSDB_TARGET_DATABASE ? { targetDatabase: process.env.HELIOSDB_TARGET_DATABASE } : {}),
  config: { bulkCopyParallelism: 4, cdcLagThresholdSeconds: 1, cutoverStrategy: "Automatic", cleanupSource: false },
});
console.log(`Migration ${migration.id} of ${tenantId}: ${migration.sourceRegion} → ${migration.targetRegion} (${migration.target?.database}): ${migration.status}`);

let ended = false;
let done!: () => void;
const over = new Promise<void>((resolve) => (done = resolve));

// The end, read from the migration itself (the phases with their measured figures); then the stream is closed.
async function finish(): Promise<void> {
  const m = await client.migrations.get(migration.id);
  if (m.status === "InProgress" || ended) return;
  ended = true;
  for (const p of m.phases) {
    const figures = [
      p.durationMs !== undefined ? `${p.durationMs} ms` : `${p.durationSeconds} s`,
      p.dataSizeGb !== undefined ? `${p.dataSizeGb} GB copied` : "",
      p.finalLagSeconds !== undefined ? `final lag ${p.finalLagSeconds} s` : "",
    ].filter(Boolean);
    console.log(`Phase ${p.phase}: ${p.status}, ${figures.join(", ")}`);
  }
  if (m.status === "Completed") console.log(`Migration completed: downtime ${m.downtimeMs} ms, ${m.dataTransferredGb} GB transferred`);
  else {
    console.log(`Migration ${m.status}${m.message ? `: ${m.message}` : ""}`);
    process.exitCode = 1;
  }
  events.abort();
  done();
}

show = (event) => {
  const d = event.details;
  if (d.migration_id !== migration.id || ended) return;
  if (event.eventType === "MigrationProgress" && d.phase === "BulkCopy") {
    const eta = d.estimated_completion ? `, estimated completion ${d.estimated_completion}` : "";
    console.log(`  BulkCopy: ${d.progress_percent}% (${d.data_size_gb} of ${d.estimated_data_size_gb} GB${eta})`);
  } else if (event.eventType === "MigrationProgress") {
    console.log(`  ${d.phase}: lag ${d.lag_seconds} s (threshold ${d.cdc_lag_threshold_seconds} s)`);
  } else if (event.eventType === "MigrationPhase" && d.phase) {
    console.log(`  ${d.phase}: ${d.status}${d.status === "InProgress" ? "" : ` (${d.duration_ms} ms)`}`);
  } else if (event.eventType !== "MigrationStarted" && event.eventType !== "MigrationPhase") {
    void finish();
  }
};
for (const event of early.splice(0)) show(event);

// Should the stream have connected after the start, or miss the end, the migration's own status says it.
const check = setInterval(() => void finish().catch((e: unknown) => console.error((e as Error).message)), 2_000);
await over;
clearInterval(check);
