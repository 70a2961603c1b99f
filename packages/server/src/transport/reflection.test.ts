// gRPC server reflection and the standard health service: `buf curl` calls
// the gRPC port with no schema file, an independent gRPC client (grpc-js with
// our .proto files) gets the same data as the Connect client, and
// grpc.health.v1 answers SERVING. Then reflection and Watch in process, for
// what the command-line clients do not ask.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  ApiKeyService,
  AuditService,
  ConnectionService,
  FailoverService,
  HealthService,
  MetricsService,
  MigrationService,
  OAuthClientService,
  ReplicationService,
  ReplicationStatus,
  RoutingService,
  UserService,
} from "@heliosdb/replication-proto";
import { seedTenant, startCluster, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startApp, type RunningApp } from "../app";
import { ServerReflection as ServerReflectionV1, ServerReflectionRequestSchema, type ServerReflectionResponse } from "../gen/grpc/reflection/v1/reflection_pb";
import { ServerReflection as ServerReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/health/v1/health_pb";
import { registerGrpcHealth } from "../services/grpc-health";
import { createPool } from "../store/db";
import { issueToken, loadSigningKey } from "./auth";
import { registerReflection } from "./reflection";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const BUF = join(ROOT, "node_modules/.bin/buf");
const SOURCE = "550e8400-e29b-41d4-a716-446655440011";
const TARGET = "550e8400-e29b-41d4-a716-446655440012";
const SERVED = [
  "heliosdb.replication.v1.ReplicationService",
  "heliosdb.replication.v1.ConnectionService",
  "heliosdb.replication.v1.RoutingService",
  "heliosdb.replication.v1.HealthService",
  "heliosdb.replication.v1.FailoverService",
  "heliosdb.replication.v1.MigrationService",
  "heliosdb.replication.v1.MetricsService",
  "heliosdb.replication.v1.ApiKeyService",
  "heliosdb.replication.v1.AuditService",
  "heliosdb.replication.v1.OAuthClientService",
  "heliosdb.replication.v1.UserService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

let control: Cluster;
let pool: pg.Pool;
let app: RunningApp;
let token: string;
let replicationId: string;
let dataDir: string | undefined;

beforeAll(async () => {
  control = await startCluster();
  await control.createDatabase("controlplane");
  // A source with the tenant's tables and an empty target, on the same
  // cluster: enough for one created (not started) replication to list.
  await control.createDatabase("source_db");
  await control.createDatabase("target_db");
  const source = await control.connect("source_db");
  await seedTenant(source, 10);
  await source.end();
  pool = createPool(control.url("controlplane"));
  dataDir = mkdtempSync(join(tmpdir(), "heliosdb-reflection-"));
  // The cluster listens on loopback, which the destination policy denies unless allowed.
  app = await startApp({ db: pool, dataDir, host: "127.0.0.1", port: 0, grpcPort: 0, tickMs: 200, allowHosts: [`${control.host}:${control.port}`], log: () => undefined });
  token = await issueToken(loadSigningKey(dataDir), { roles: ["Admin"], subject: "test" });
  const headers = { authorization: `Bearer ${token}` };
  const transport = createGrpcTransport({ baseUrl: app.urls.grpc });
  const connections = createClient(ConnectionService, transport);
  for (const [connectionId, database] of [[SOURCE, "source_db"], [TARGET, "target_db"]] as const) {
    await connections.registerConnection(
      { connection: { connectionId, host: control.host, port: control.port, user: control.user, password: control.password, database, sslmode: "disable", region: "us-east-1", ownerTenantId: "tenant-reflection" } },
      { headers },
    );
  }
  const replication = await createClient(ReplicationService, transport).createReplication(
    {
      tenantId: "tenant-reflection",
      source: { connectionId: SOURCE, database: "source_db", schema: "public" },
      target: { connectionId: TARGET, database: "target_db", schema: "public" },
    },
    { headers },
  );
  replicationId = replication.id;
}, 180_000);

afterAll(async () => {
  await app?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  await pool?.end();
  await control?.stop();
}, 60_000);

/** Runs `buf curl` against the gRPC port; never throws. */
function bufCurl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe("buf curl over server reflection, with no schema file", () => {
  const grpcUrl = () => `http://127.0.0.1:${app.ports.grpc}`;

  test.each([["grpc-v1"], ["grpc-v1alpha"]])("--list-services (%s) lists every service served, reflection and health too", async (protocol) => {
    const res = await bufCurl("--reflect-protocol", protocol, "--list-services", grpcUrl());
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim().split("\n").sort()).toEqual([...SERVED].sort());
  });

  test("--list-methods names each method", async () => {
    const res = await bufCurl("--list-methods", grpcUrl());
    expect(res.code, res.stderr).toBe(0);
    const methods = res.stdout.trim().split("\n");
    expect(methods).toContain("heliosdb.replication.v1.ReplicationService/GetReplication");
    expect(methods).toContain("heliosdb.replication.v1.ReplicationService/StreamReplicationEvents");
    expect(methods).toContain("heliosdb.replication.v1.HealthService/Health");
    expect(methods).toContain("grpc.health.v1.Health/Watch");
    expect(methods).toContain("grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    const all = [ReplicationService, ConnectionService, RoutingService, HealthService, FailoverService, MigrationService, MetricsService, ApiKeyService, AuditService, OAuthClientService, UserService, Health, ServerReflectionV1, ServerReflectionV1alpha];
    expect(methods.sort()).toEqual(all.flatMap((s: DescService) => s.methods.map((m) => `${s.typeName}/${m.name}`)).sort());
  });

  test.each([["grpc-v1"], ["grpc-v1alpha"]])("a real call (%s): an unknown replication is not_found", async (protocol) => {
    const res = await bufCurl(
      "--reflect-protocol", protocol,
      "-H", `Authorization: Bearer ${token}`,
      "-d", JSON.stringify({ id: "550e8400-e29b-41d4-a716-446655449999" }),
      `${grpcUrl()}/heliosdb.replication.v1.ReplicationService/GetReplication`,
    );
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toMatch(/not_found/);
  });

  test("a real call: the replication created, by id, in its JSON form", async () => {
    const res = await bufCurl(
      "-H", `Authorization: Bearer ${token}`,
      "-d", JSON.stringify({ id: replicationId }),
      `${grpcUrl()}/heliosdb.replication.v1.ReplicationService/GetReplication`,
    );
    expect(res.code, res.stderr).toBe(0);
    // INITIALIZING is the enum's zero value: proto3 JSON leaves it out.
    expect(JSON.parse(res.stdout)).toMatchObject({ id: replicationId, tenantId: "tenant-reflection", source: { connectionId: SOURCE }, target: { connectionId: TARGET } });
  });

  test.each([["grpc-v1"], ["grpc-v1alpha"]])("HealthService/Health (%s) answers JSON with a status", async (protocol) => {
    const res = await bufCurl("--reflect-protocol", protocol, `${grpcUrl()}/heliosdb.replication.v1.HealthService/Health`);
    expect(res.code, res.stderr).toBe(0);
    const body = JSON.parse(res.stdout);
    expect(body.status).toBe("Healthy");
    expect(body.checks).toEqual({ database: "Healthy", message_queue: "Healthy", worker_pool: "Healthy", replications: "Healthy" });
  });

  test("grpc.health.v1.Health/Check answers SERVING; an unknown service is not_found", async () => {
    const res = await bufCurl(`${grpcUrl()}/grpc.health.v1.Health/Check`);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ status: "SERVING" });
    const named = await bufCurl("-d", JSON.stringify({ service: "heliosdb.replication.v1.ReplicationService" }), `${grpcUrl()}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(named.stdout)).toEqual({ status: "SERVING" });
    const unknown = await bufCurl("-d", JSON.stringify({ service: "no.such.Service" }), `${grpcUrl()}/grpc.health.v1.Health/Check`);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout + unknown.stderr).toMatch(/not_found/);
  });
});

describe("grpc-js with our .proto files, an independent client", () => {
  type Callback<T> = (error: grpc.ServiceError | null, value: T) => void;
  type Unary = (request: object, metadata: grpc.Metadata, callback: Callback<Record<string, unknown>>) => void;
  let replicationClient: grpc.Client & Record<string, Unary>;
  let healthClient: grpc.Client & Record<string, Unary>;

  beforeAll(() => {
    const definition = protoLoader.loadSync(["heliosdb/replication/v1/replication.proto", "heliosdb/replication/v1/health.proto"], {
      includeDirs: [join(ROOT, "proto"), join(ROOT, "node_modules/google-proto-files")],
      longs: String,
      enums: String,
      defaults: true,
    });
    const v1 = (grpc.loadPackageDefinition(definition) as never as { heliosdb: { replication: { v1: Record<string, grpc.ServiceClientConstructor> } } }).heliosdb.replication.v1;
    const address = `127.0.0.1:${app.ports.grpc}`;
    replicationClient = new v1.ReplicationService!(address, grpc.credentials.createInsecure()) as never;
    healthClient = new v1.HealthService!(address, grpc.credentials.createInsecure()) as never;
  });

  afterAll(() => {
    replicationClient?.close();
    healthClient?.close();
  });

  function call(client: Record<string, Unary>, method: string, request: object, metadata = new grpc.Metadata()): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => client[method]!.call(client, request, metadata, (error, value) => (error ? reject(error) : resolve(value))));
  }

  function withToken(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.add("authorization", `Bearer ${token}`);
    return metadata;
  }

  const connect = () => createGrpcTransport({ baseUrl: app.urls.grpc });

  test("HealthService.Health answers what the Connect client gets", async () => {
    const viaGrpcJs = await call(healthClient, "Health", {});
    const viaConnect = await createClient(HealthService, connect()).health({});
    expect(viaGrpcJs).toMatchObject({ status: viaConnect.status, version: viaConnect.version, checks: viaConnect.checks });
    expect(viaGrpcJs.status).toBe("Healthy");
  });

  test("ReplicationService.ListReplications with the token answers what the Connect client gets", async () => {
    const viaGrpcJs = (await call(replicationClient, "ListReplications", { tenantId: "tenant-reflection" }, withToken())) as {
      replications: { id: string; tenantId: string; status: string; health: string; source: { connectionId: string } | null; target: { connectionId: string } | null; createdAt: { seconds: string } }[];
      pagination: object;
    };
    const viaConnect = await createClient(ReplicationService, connect()).listReplications(
      { tenantId: "tenant-reflection" },
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(viaConnect.replications.map((r) => r.id)).toEqual([replicationId]);
    // A message field left unset is null for grpc-js, undefined for Connect.
    expect(
      viaGrpcJs.replications.map((r) => ({
        id: r.id,
        tenantId: r.tenantId,
        status: r.status,
        health: r.health,
        source: r.source?.connectionId ?? null,
        target: r.target?.connectionId ?? null,
        createdAt: BigInt(r.createdAt.seconds),
      })),
    ).toEqual(
      viaConnect.replications.map((r) => ({
        id: r.id,
        tenantId: r.tenantId,
        status: ReplicationStatus[r.status],
        health: r.health,
        source: r.source?.connectionId ?? null,
        target: r.target?.connectionId ?? null,
        createdAt: r.createdAt?.seconds,
      })),
    );
    const { $typeName: _, ...pagination } = viaConnect.pagination!;
    expect(viaGrpcJs.pagination).toEqual(pagination);
  });

  test("without a token the call is UNAUTHENTICATED", async () => {
    await expect(call(replicationClient, "ListReplications", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });
});

describe("grpc-js against grpc.health.v1, with the npm package's health.proto", () => {
  let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  beforeAll(() => {
    const definition = protoLoader.loadSync(join(ROOT, "node_modules/grpc-health-check/proto/health/v1/health.proto"), { enums: String, defaults: true });
    const v1 = (grpc.loadPackageDefinition(definition) as never as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health.v1;
    client = new v1.Health(`127.0.0.1:${app.ports.grpc}`, grpc.credentials.createInsecure()) as never;
  });

  afterAll(() => client?.close());

  const check = (service: string) =>
    new Promise<{ status: string }>((resolve, reject) =>
      client.Check!({ service }, (error: grpc.ServiceError | null, value: { status: string }) => (error ? reject(error) : resolve(value))),
    );

  test("Check answers SERVING for the server and for a service it serves", async () => {
    expect(await check("")).toEqual({ status: "SERVING" });
    expect(await check("heliosdb.replication.v1.HealthService")).toEqual({ status: "SERVING" });
  });

  test("Check of an unknown service is NOT_FOUND", async () => {
    await expect(check("no.such.Service")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  test("Watch sends the current status at once, and ends when the client cancels", async () => {
    const call = client.Watch!({ service: "" }) as grpc.ClientReadableStream<{ status: string }>;
    const first = await new Promise<{ status: string }>((resolve, reject) => {
      call.once("data", resolve);
      call.once("error", reject);
    });
    expect(first).toEqual({ status: "SERVING" });
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
    call.cancel();
    expect((await ended).code).toBe(grpc.status.CANCELLED);
  });
});

// In process: the reflection requests the command-line clients above do not
// make, and Watch noticing a change.
describe("reflection in process", () => {
  const router = (extra: (r: ConnectRouter) => void) => (r: ConnectRouter) => {
    r.service(ReplicationService, {});
    r.service(HealthService, {});
    extra(r);
    registerReflection(r);
  };
  const transport = createRouterTransport(router(() => undefined));

  async function ask(...requests: Parameters<typeof create<typeof ServerReflectionRequestSchema>>[1][]): Promise<ServerReflectionResponse[]> {
    const client = createClient(ServerReflectionV1, transport);
    const out: ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(
      (async function* () {
        for (const r of requests) yield create(ServerReflectionRequestSchema, r);
      })(),
    )) {
      out.push(res);
    }
    return out;
  }

  const files = (res: ServerReflectionResponse | undefined) =>
    res?.messageResponse.case === "fileDescriptorResponse" ? res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name) : [];

  test("file_by_filename sends the file, then its transitive dependencies, google/api and google/protobuf included", async () => {
    const [res] = await ask({ host: "h", messageRequest: { case: "fileByFilename", value: "heliosdb/replication/v1/replication.proto" } });
    expect(res?.validHost).toBe("h");
    expect(res?.originalRequest?.messageRequest).toEqual({ case: "fileByFilename", value: "heliosdb/replication/v1/replication.proto" });
    const names = files(res);
    expect(names[0]).toBe("heliosdb/replication/v1/replication.proto");
    expect(names).toEqual(expect.arrayContaining([
      "heliosdb/replication/v1/common.proto",
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
      "google/protobuf/timestamp.proto",
    ]));
    expect(new Set(names).size).toBe(names.length);
  });

  test("on one stream, a dependency already sent is not sent again; the file asked for always is", async () => {
    const [first, second, third] = await ask(
      { messageRequest: { case: "fileByFilename", value: "heliosdb/replication/v1/replication.proto" } },
      { messageRequest: { case: "fileByFilename", value: "heliosdb/replication/v1/health.proto" } },
      { messageRequest: { case: "fileByFilename", value: "heliosdb/replication/v1/replication.proto" } },
    );
    expect(files(first).length).toBeGreaterThan(3);
    expect(files(second)).toEqual(["heliosdb/replication/v1/health.proto"]);
    expect(files(third)).toEqual(["heliosdb/replication/v1/replication.proto"]);
  });

  test.each([
    ["a service", "heliosdb.replication.v1.ReplicationService", "heliosdb/replication/v1/replication.proto"],
    ["a method", "heliosdb.replication.v1.ReplicationService.GetReplication", "heliosdb/replication/v1/replication.proto"],
    ["a message", "heliosdb.replication.v1.HealthResponse", "heliosdb/replication/v1/health.proto"],
    ["a field", "heliosdb.replication.v1.HealthResponse.uptime_seconds", "heliosdb/replication/v1/health.proto"],
    ["an enum", "heliosdb.replication.v1.ReplicationStatus", "heliosdb/replication/v1/replication.proto"],
    ["an enum value (scoped like its enum)", "heliosdb.replication.v1.STREAMING", "heliosdb/replication/v1/replication.proto"],
    ["an extension", "google.api.http", "google/api/annotations.proto"],
    ["a well-known type", "google.protobuf.Timestamp", "google/protobuf/timestamp.proto"],
    ["the reflection service itself", "grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"],
    ["a leading dot", ".heliosdb.replication.v1.HealthService", "heliosdb/replication/v1/health.proto"],
  ])("file_containing_symbol finds %s", async (_, symbol, file) => {
    const [res] = await ask({ messageRequest: { case: "fileContainingSymbol", value: symbol } });
    expect(files(res)[0]).toBe(file);
  });

  test("file_containing_extension and all_extension_numbers_of_type", async () => {
    const [byNumber, numbers, unknownNumber] = await ask(
      { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 } } },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" } },
      { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 } } },
    );
    expect(files(byNumber)[0]).toBe("google/api/annotations.proto");
    expect(numbers?.messageResponse).toMatchObject({ case: "allExtensionNumbersResponse", value: { baseTypeName: "google.protobuf.MethodOptions" } });
    expect(numbers?.messageResponse.case === "allExtensionNumbersResponse" && numbers.messageResponse.value.extensionNumber).toContain(72295728);
    expect(unknownNumber?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
  });

  test("unknown symbols, files and types are ErrorResponses with NOT_FOUND, and the stream goes on", async () => {
    const responses = await ask(
      { messageRequest: { case: "fileContainingSymbol", value: "no.such.Symbol" } },
      { messageRequest: { case: "fileByFilename", value: "no/such.proto" } },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "no.such.Message" } },
      { messageRequest: { case: "listServices", value: "*" } },
    );
    for (const res of responses.slice(0, 3)) expect(res.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    expect(responses[3]?.messageResponse.case).toBe("listServicesResponse");
  });

  test("v1alpha answers like v1", async () => {
    const client = createClient(ServerReflectionV1alpha, transport);
    const out = [];
    for await (const res of client.serverReflectionInfo(
      (async function* () {
        yield { messageRequest: { case: "listServices" as const, value: "" } };
        yield { messageRequest: { case: "fileContainingSymbol" as const, value: "heliosdb.replication.v1.HealthService.Ready" } };
      })(),
    )) {
      out.push(res);
    }
    expect(out[0]?.messageResponse).toEqual({
      case: "listServicesResponse",
      value: expect.objectContaining({
        service: [ReplicationService, HealthService, ServerReflectionV1, ServerReflectionV1alpha].map((s: DescService) => expect.objectContaining({ name: s.typeName })),
      }),
    });
    expect(out[1]?.messageResponse.case === "fileDescriptorResponse" && fromBinary(FileDescriptorProtoSchema, out[1].messageResponse.value.fileDescriptorProto[0]!).name).toBe(
      "heliosdb/replication/v1/health.proto",
    );
  });
});

describe("grpc.health.v1 in process", () => {
  test("Watch sends the status again when it changes, and List names every service", async () => {
    let healthy = true;
    const transport = createRouterTransport((r) => {
      r.service(ReplicationService, {});
      registerGrpcHealth(r, async () => healthy, 20);
    });
    const client = createClient(Health, transport);
    const list = await client.list({});
    expect(Object.keys(list.statuses).sort()).toEqual(["", "grpc.health.v1.Health", "heliosdb.replication.v1.ReplicationService"]);
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    await expect(
      (async () => {
        for await (const res of client.watch({ service: "heliosdb.replication.v1.ReplicationService" }, { signal: abort.signal })) {
          seen.push(res.status);
          if (seen.length === 1) healthy = false;
          if (seen.length === 2) healthy = true;
          if (seen.length === 3) abort.abort();
        }
      })(),
    ).rejects.toThrow(/cancel|abort/i);
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
    const unknown = client.watch({ service: "no.such.Service" }, { signal: AbortSignal.timeout(2000) });
    for await (const res of unknown) {
      expect(res.status).toBe(ServingStatus.SERVICE_UNKNOWN);
      break;
    }
  });
});
