// Fails a replication over to its replica (spec §2.3) and prints the steps
// as they progress: the replica's health checked, the source fenced and
// drained and the replication stopped, the replica promoted, the tenant's
// routing switched. Then the measured downtime, and — when the source was
// unreachable and `HELIOSDB_FORCE=1` forced it — what may have been lost.
//
//   HELIOSDB_API_KEY=hdb_… HELIOSDB_BASE_URL=http://localhost:8080/v1 \
//   HELIOSDB_REPLICATION_ID=650e8400-… npx tsx failover.ts
import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";

const client = new HeliosDBReplicationClient({
  apiKey: process.env.HELIOSDB_API_KEY,
  baseUrl: process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1",
});
const replicationId = process.env.HELIOSDB_REPLICATION_ID ?? process.argv[2]!;

const accepted = await client.failovers.trigger(replicationId, {
  reason: "Planned maintenance on primary region",
  force: process.env.HELIOSDB_FORCE === "1",
  updateRouting: true,
});
console.log(`Failover ${accepted.failoverId} of replication ${replicationId}: ${accepted.status}`);

// Each step once per status it reaches, in order, until the failover ends.
const printed = new Map<string, string>();
for (;;) {
  const failover = await client.failovers.get(accepted.failoverId);
  for (const step of failover.steps) {
    if (step.status === "Pending" || printed.get(step.step) === step.status) continue;
    printed.set(step.step, step.status);
    const took = step.status === "InProgress" ? "" : ` (${step.durationMs} ms)`;
    console.log(`  ${step.step}: ${step.status}${took}${step.message && step.status !== "InProgress" ? ` — ${step.message}` : ""}`);
  }
  if (failover.status !== "InProgress") {
    if (failover.status === "Completed") {
      const primary = failover.newPrimary;
      console.log(`Failover completed: the primary is ${primary?.region} ${primary?.database}; downtime ${failover.downtimeMs} ms`);
      const loss = failover.possibleDataLoss;
      if (loss) console.log(`Writes the source committed after LSN ${loss.lastApplied?.lsn} may be lost`);
    } else {
      console.log(`Failover ${failover.status}: ${failover.message}`);
      process.exitCode = 1;
    }
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
