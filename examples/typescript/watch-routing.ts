// Follows where a tenant's primary lives: prints its routing now, then again
// at every change (a failover, a migration's cutover), for as long as it
// runs (Ctrl-C to stop). A dropped connection or a restarted server does not
// end it: the watch reconnects and goes on, never printing a version twice.
//
//   HELIOSDB_API_KEY=hdb_… HELIOSDB_BASE_URL=http://localhost:8080/v1 npx tsx watch-routing.ts tenant-123
import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";

const client = new HeliosDBReplicationClient({
  apiKey: process.env.HELIOSDB_API_KEY,
  baseUrl: process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1",
});
const tenantId = process.argv[2] ?? "tenant-123";
for await (const routing of client.routing.watch(tenantId)) {
  const { primary, version, writesBlocked, nextPrimary } = routing;
  // nextPrimary: a cutover is being prepared; an application would open its connections there now, and use them
  // once `primary` names it.
  const next = nextPrimary ? ` (next: ${nextPrimary.region} ${nextPrimary.database})` : "";
  console.log(`${tenantId} v${version}: ${primary?.region} ${primary?.database}${writesBlocked ? " (writes blocked: cutover under way)" : ""}${next}`);
}
