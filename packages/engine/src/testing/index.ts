// Test support for packages that build on the engine: real PostgreSQL
// clusters, a seeded tenant, a writer, checksums. Not for production use.
export { freePort, startCluster, type Cluster } from "./clusters";
export { seedTenant, startWriter, tableChecksum, TENANT_COLUMNS, waitFor } from "./tenant";
export { startTenantWriters, type Refusal, type TenantWriters } from "./writers";
