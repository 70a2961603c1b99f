import type { DescService } from "@bufbuild/protobuf";
import { ApiKeyService } from "./gen/heliosdb/replication/v1/api_key_pb";
import { AuditService } from "./gen/heliosdb/replication/v1/audit_pb";
import { ConnectionService } from "./gen/heliosdb/replication/v1/connection_pb";
import { FailoverService } from "./gen/heliosdb/replication/v1/failover_pb";
import { HealthService } from "./gen/heliosdb/replication/v1/health_pb";
import { MetricsService } from "./gen/heliosdb/replication/v1/metrics_pb";
import { MigrationService } from "./gen/heliosdb/replication/v1/migration_pb";
import { OAuthClientService, UserService } from "./gen/heliosdb/replication/v1/oauth_pb";
import { ReplicationService } from "./gen/heliosdb/replication/v1/replication_pb";
import { RoutingService } from "./gen/heliosdb/replication/v1/routing_pb";

/** Every service of the contract: what a server serves and a REST router maps. */
export const services: readonly DescService[] = [
  ReplicationService,
  FailoverService,
  MigrationService,
  MetricsService,
  ConnectionService,
  RoutingService,
  HealthService,
  ApiKeyService,
  AuditService,
  OAuthClientService,
  UserService,
];
