// The REST transport against the real server (embedded PostgreSQL, real
// listeners): every call is made from the RPC's google.api.http rule, and
// answers the same message objects as the server's Connect endpoint does
// (through @connectrpc/connect-node, the comparator); refusals are the
// error classes of their codes, with the server's request id.
import { create, equals } from "@bufbuild/protobuf";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  CreateReplicationRequestSchema,
  DeleteReplicationRequestSchema,
  GetReplicationRequestSchema,
  HealthService,
  ListReplicationsRequestSchema,
  ListReplicationsResponseSchema,
  QoSTier,
  ReplicationSchema,
  ReplicationService,
  UpdateReplicationRequestSchema,
} from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../server/src/testing/world";
import { NotFoundError, UnauthorizedError, ValidationError } from "../src/core/index";
import type { RestConfig } from "../src/internal/rest-fetch";
import { restInvoke } from "../src/internal/rest-transport";

let world: World;
let rest: RestConfig;
let connect: ReturnType<typeof createClient<typeof ReplicationService>>;

beforeAll(async () => {
  world = await startWorld({ users: 100 });
  await world.west.createDatabase("sdk_rest");
  rest = { baseUrl: world.app.urls.rest, headers: () => ({ authorization: `Bearer ${world.token}` }), timeoutMs: 10_000 };
  const auth: Interceptor = (next) => (req) => (req.header.set("authorization", `Bearer ${world.token}`), next(req));
  connect = createClient(ReplicationService, createConnectTransport({ baseUrl: world.app.urls.rest.replace(/\/v1$/, ""), httpVersion: "1.1", interceptors: [auth] }));
}, 180_000);

afterAll(() => world?.close(), 120_000);

const M = ReplicationService.method;

test("create, get, list, update and delete over REST answer the messages Connect answers", async () => {
  const created = await restInvoke(rest, M.createReplication, create(CreateReplicationRequestSchema, {
    tenantId: "tenant-123",
    source: { connectionId: EAST, database: "production_db" },
    target: { connectionId: WEST, database: "sdk_rest" },
    config: { qosTier: QoSTier.PREMIUM, maxLagSeconds: 5, priority: 90, tableFilter: ["users.*"] },
  }));
  expect(created.$typeName).toBe("heliosdb.replication.v1.Replication");
  expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(created.config?.qosTier).toBe(QoSTier.PREMIUM);
  expect(created.config?.maxLagSeconds).toBe(5);

  const viaRest = await restInvoke(rest, M.getReplication, create(GetReplicationRequestSchema, { id: created.id }));
  const viaConnect = await connect.getReplication({ id: created.id });
  expect(equals(ReplicationSchema, viaRest, viaConnect)).toBe(true);

  // Query parameters (a filter, an enum, paging) and the list's "data" key come back as the message.
  const list = create(ListReplicationsRequestSchema, { tenantId: "tenant-123", qosTier: QoSTier.PREMIUM, page: 1, pageSize: 10 });
  const listed = await restInvoke(rest, M.listReplications, list);
  expect(listed.replications.map((r) => r.id)).toContain(created.id);
  expect(listed.pagination).toMatchObject({ page: 1, pageSize: 10 });
  expect(equals(ListReplicationsResponseSchema, listed, await connect.listReplications(list))).toBe(true);

  // PATCH with the fields the mask names, the id in the path.
  const updated = await restInvoke(rest, M.updateReplication, create(UpdateReplicationRequestSchema, { id: created.id, config: { maxLagSeconds: 30 }, updateMask: { paths: ["config.max_lag_seconds"] } }));
  expect(updated.config?.maxLagSeconds).toBe(30);
  expect(updated.config?.priority).toBe(90);
  expect(equals(ReplicationSchema, updated, await connect.getReplication({ id: created.id }))).toBe(true);

  // 204: an empty message.
  const deleted = await restInvoke(rest, M.deleteReplication, create(DeleteReplicationRequestSchema, { id: created.id }));
  expect(deleted.$typeName).toBe("google.protobuf.Empty");
  const gone = await restInvoke(rest, M.getReplication, create(GetReplicationRequestSchema, { id: created.id })).catch((e: unknown) => e);
  expect(gone).toBeInstanceOf(NotFoundError);
  expect((gone as NotFoundError).requestId).toBeTruthy();
  expect((gone as NotFoundError).details).toMatchObject({ replication_id: created.id });
}, 60_000);

test("refusals are their codes' classes: a request that fails validation, a missing credential", async () => {
  const invalid = await restInvoke(rest, M.createReplication, create(CreateReplicationRequestSchema, { tenantId: "tenant-123" })).catch((e: unknown) => e);
  expect(invalid).toBeInstanceOf(ValidationError);
  expect((invalid as ValidationError).status).toBe(400);
  expect(JSON.stringify((invalid as ValidationError).details)).toContain("source");

  const anonymous = await restInvoke({ ...rest, headers: () => ({}) }, M.getReplication, create(GetReplicationRequestSchema, { id: EAST })).catch((e: unknown) => e);
  expect(anonymous).toBeInstanceOf(UnauthorizedError);
  expect((anonymous as UnauthorizedError).status).toBe(401);

  // A public RPC needs no credential.
  const health = await restInvoke({ ...rest, headers: () => ({}) }, HealthService.method.health, create(HealthService.method.health.input));
  expect(health.$typeName).toBe(HealthService.method.health.output.typeName);
});
