// client.migrations: MigrationService (spec §2.4; docs/migration.md).
import { MigrationService, type CancelMigrationRequest, type CancelMigrationResponse, type ListMigrationsRequest, type Migration, type StartMigrationRequest } from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

const M = MigrationService.method;

export class Migrations extends Resource {
  /** POST /v1/migrations (StartMigration). */
  start(params: Params<StartMigrationRequest>, options?: CallOptions): Promise<Migration> {
    return this.call(M.startMigration, params, options);
  }

  /** GET /v1/migrations/{migration_id} (GetMigrationStatus). */
  get(migrationId: string, options?: CallOptions): Promise<Migration> {
    return this.call(M.getMigrationStatus, { migrationId }, options);
  }

  /** POST /v1/migrations/{migration_id}/cancel (CancelMigration). */
  cancel(migrationId: string, params: Omit<Params<CancelMigrationRequest>, "migrationId"> = {}, options?: CallOptions): Promise<CancelMigrationResponse> {
    return this.call(M.cancelMigration, { ...params, migrationId }, options);
  }

  /** POST /v1/migrations/{migration_id}/cutover (CutoverMigration): the cutover of a Manual migration. */
  cutover(migrationId: string, options?: CallOptions): Promise<Migration> {
    return this.call(M.cutoverMigration, { migrationId }, options);
  }

  /** GET /v1/migrations (ListMigrations). */
  list(params: Params<ListMigrationsRequest> = {}, options?: CallOptions): PagePromise<Migration> {
    return this.paged(M.listMigrations, params, options);
  }
}
