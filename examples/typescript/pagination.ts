// Lists a tenant's replications three ways (spec §2.1.3): the first page,
// awaited; every replication across every page, with `for await` (pages are
// fetched as the loop gets to them); and page by page with `.pages()`.
//
//   HELIOSDB_API_KEY=hdb_… HELIOSDB_BASE_URL=http://localhost:8080/v1 npx tsx pagination.ts
import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";

const client = new HeliosDBReplicationClient({
  apiKey: process.env.HELIOSDB_API_KEY,
  baseUrl: process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1",
});
const tenantId = process.env.HELIOSDB_TENANT_ID ?? "tenant-123";

// The first page only.
const first = await client.replications.list({ tenantId, pageSize: 2 });
console.log(`First page: ${first.items.length} of ${first.totalItems} replications, ${first.totalPages} pages`);

// Every replication; `break` would stop fetching.
let count = 0;
for await (const replication of client.replications.list({ tenantId, pageSize: 2, sortBy: "created_at" })) {
  count++;
  console.log(`${replication.id} ${replication.status}`);
}
console.log(`Listed ${count} replications`);

// Page by page, e.g. to show "page 2 of 5".
for await (const page of client.replications.list({ tenantId, pageSize: 2 }).pages()) {
  console.log(`Page ${page.page} of ${page.totalPages}: ${page.items.map((r) => r.id).join(", ")}`);
}
