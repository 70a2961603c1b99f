// OAuth 2.0 client credentials (spec §5.3): an administrator registers a
// confidential client for a machine — its secret is shown once — and the
// machine's SDK client asks the token endpoint for tokens itself, renewing
// them before they expire; nothing but the client id and secret is kept.
//
//   HELIOSDB_TOKEN=$(npm run -s token -- --tenant tenant-123 --roles Admin --data-dir .heliosdb) npx tsx oauth.ts
import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";

const baseUrl = process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1";
const admin = new HeliosDBReplicationClient({ token: process.env.HELIOSDB_TOKEN, baseUrl });

const registered = await admin.oauthClients.create({
  name: "nightly job",
  grantTypes: ["client_credentials"],
  confidential: true,
  tenantId: "tenant-123",
  roles: ["Viewer"],
});
console.log(`Registered OAuth client ${registered.client!.clientId}`);

// The machine: tokens from /oauth/token at the base URL's origin (or `tokenUrl`).
const machine = new HeliosDBReplicationClient({
  oauth: { clientId: registered.client!.clientId, clientSecret: registered.clientSecret },
  baseUrl,
});
const page = await machine.replications.list({ tenantId: "tenant-123" });
console.log(`With client credentials: ${page.totalItems} replications`);

await admin.oauthClients.delete(registered.client!.clientId);
console.log("Deleted the OAuth client: its tokens no longer work");
