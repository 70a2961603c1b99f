// API keys (spec §5.2): an administrator creates a key for a service — its
// secret is shown once — the service calls with it; the key is rotated with
// an overlap, during which the old secret still works so that the service
// can move to the new one; then the old key is revoked and refused at once.
//
//   HELIOSDB_TOKEN=$(npm run -s token -- --tenant tenant-123 --roles Admin --data-dir .heliosdb) npx tsx api-keys.ts
import { HeliosDBReplicationClient, UnauthorizedError } from "@heliosdb/replication-sdk";

const baseUrl = process.env.HELIOSDB_BASE_URL ?? "http://localhost:8080/v1";
const admin = new HeliosDBReplicationClient({ token: process.env.HELIOSDB_TOKEN, baseUrl });

const { apiKey, secret } = await admin.apiKeys.create({ name: "reporting service", tenantId: "tenant-123", roles: ["Viewer"] });
console.log(`Created key ${apiKey!.keyId}; store its secret now, it is not shown again`);

// The service, with its key.
const service = new HeliosDBReplicationClient({ apiKey: secret, baseUrl });
const page = await service.replications.list({ tenantId: "tenant-123" });
console.log(`With the key: ${page.totalItems} replications`);

// Rotation: a new secret; the old one works for the overlap (here an hour).
const rotated = await admin.apiKeys.rotate(apiKey!.keyId, { overlapSeconds: 3600 });
const expiresAt = new Date(Number(rotated.previous!.expiresAt!.seconds) * 1000);
console.log(`Rotated: new key ${rotated.apiKey!.keyId}; the old secret works until ${expiresAt.toISOString()}`);
const renewed = new HeliosDBReplicationClient({ apiKey: rotated.secret, baseUrl });
await renewed.replications.list({ tenantId: "tenant-123" });
await service.replications.list({ tenantId: "tenant-123" });
console.log("Both secrets work during the overlap");

// Every user has moved: the old key goes now.
await admin.apiKeys.revoke(apiKey!.keyId);
try {
  await service.replications.list({ tenantId: "tenant-123" });
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
  console.log(`Revoked key ${apiKey!.keyId}; its secret: ${e.code}`);
}
await renewed.replications.list({ tenantId: "tenant-123" });
console.log("The new key still works");
