// Test support: one RPC called over each protocol a client may use — REST
// (fetch), gRPC (grpc-js, an independent implementation, with our .proto
// files), gRPC-web and Connect (Connect's node transports) — each answer
// reduced to the same shape: the §6 code (or OK), the request id, the message
// and the response, so that one expectation holds for every protocol.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ApiErrorSchema, ApiKeyService, AuditService, ReplicationService } from "@heliosdb/replication-proto";
import type { RunningApp } from "../../src/app";

export const PROTOCOLS = ["rest", "grpc", "grpc-web", "connect"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface Outcome {
  /** "OK", or the §6 code of the error. */
  code: string;
  /** REST's HTTP status. */
  status?: number;
  /** gRPC, gRPC-web and Connect: the status code of the call. */
  grpcCode?: number;
  message: string;
  requestId: string;
  /** The response message (proto3 JSON for gRPC, REST JSON for REST). */
  body?: Record<string, unknown>;
  /** Everything the client received, as text: for the test that no secret leaks. */
  raw: string;
}

// The RPCs the security tests call, with their REST routes.
const json = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? String(v) : v));

const RPCS = {
  listApiKeys: { service: ApiKeyService, grpcService: "ApiKeyService", method: "ListApiKeys", rest: () => ["GET", "/api-keys"] },
  getApiKey: { service: ApiKeyService, grpcService: "ApiKeyService", method: "GetApiKey", rest: (r: Rec) => ["GET", `/api-keys/${r.keyId}`] },
  createApiKey: { service: ApiKeyService, grpcService: "ApiKeyService", method: "CreateApiKey", rest: () => ["POST", "/api-keys"] },
  getReplication: { service: ReplicationService, grpcService: "ReplicationService", method: "GetReplication", rest: (r: Rec) => ["GET", `/replications/${r.id}`] },
  listAuditEvents: { service: AuditService, grpcService: "AuditService", method: "ListAuditEvents", rest: () => ["GET", "/audit-events"] },
} satisfies Record<string, { service: DescService; grpcService: string; method: string; rest: (r: Rec) => string[] }>;
export type Rpc = keyof typeof RPCS;
type Rec = Record<string, unknown>;

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

export class Clients {
  private readonly grpcClients = new Map<string, grpc.Client>();
  private readonly transports: Record<"grpc-web" | "connect", Transport>;

  constructor(private readonly app: RunningApp) {
    const baseUrl = `http://127.0.0.1:${app.ports.http}`;
    this.transports = { "grpc-web": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }), connect: createConnectTransport({ baseUrl, httpVersion: "1.1" }) };
    const definition = protoLoader.loadSync(["api_key.proto", "audit.proto", "replication.proto"].map((f) => `heliosdb/replication/v1/${f}`), {
      includeDirs: [join(ROOT, "proto"), join(ROOT, "node_modules/google-proto-files")],
      longs: String,
      enums: String,
    });
    const v1 = (grpc.loadPackageDefinition(definition) as never as { heliosdb: { replication: { v1: Record<string, grpc.ServiceClientConstructor> } } }).heliosdb.replication.v1;
    for (const name of ["ApiKeyService", "AuditService", "ReplicationService"]) {
      this.grpcClients.set(name, new v1[name]!(`127.0.0.1:${app.ports.grpc}`, grpc.credentials.createInsecure()));
    }
  }

  close(): void {
    for (const client of this.grpcClients.values()) client.close();
  }

  /**
   * Calls `rpc` with `request` (field names in camelCase; REST gets them in
   * snake_case) and `headers`, over `protocol`.
   */
  async call(protocol: Protocol, rpc: Rpc, request: Rec, headers: Record<string, string>): Promise<Outcome> {
    const spec = RPCS[rpc];
    if (protocol === "rest") return this.rest(spec.rest(request), request, headers);
    if (protocol === "grpc") return this.grpc(spec.grpcService, spec.method, request, headers);
    const client = createClient(spec.service, this.transports[protocol]) as unknown as Record<string, (r: Rec, o: object) => Promise<object>>;
    const local = spec.method[0]!.toLowerCase() + spec.method.slice(1);
    let responseHeader = new Headers();
    try {
      const body = await client[local]!(request, { headers, onHeader: (h: Headers) => (responseHeader = h) });
      const text = json(body);
      return { code: "OK", message: "", requestId: responseHeader.get("x-request-id") ?? "", body: JSON.parse(text), raw: text };
    } catch (e) {
      const error = ConnectError.from(e);
      const detail = error.findDetails(ApiErrorSchema)[0];
      return { code: detail?.code ?? `connect:${error.code}`, grpcCode: error.code, message: detail?.message ?? error.rawMessage, requestId: detail?.requestId ?? "", raw: `${error.rawMessage} ${json(detail ?? {})}` };
    }
  }

  private async rest([method, path]: string[], request: Rec, headers: Record<string, string>): Promise<Outcome> {
    const snake = Object.fromEntries(Object.entries(request).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
    const res = await fetch(`${this.app.urls.rest}${path}`, {
      method,
      headers: { ...headers, ...(method === "POST" ? { "content-type": "application/json" } : {}) },
      ...(method === "POST" ? { body: JSON.stringify(snake) } : {}),
    });
    const raw = await res.text();
    const body = raw ? JSON.parse(raw) : undefined;
    const requestId = res.headers.get("x-request-id") ?? "";
    if (res.ok) return { code: "OK", status: res.status, message: "", requestId, body, raw };
    return { code: body.error.code, status: res.status, message: body.error.message, requestId: body.error.request_id, raw };
  }

  private grpc(service: string, method: string, request: Rec, headers: Record<string, string>): Promise<Outcome> {
    const metadata = new grpc.Metadata();
    for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
    const client = this.grpcClients.get(service)! as unknown as Record<string, Function>;
    return new Promise((resolve) => {
      client[method]!.call(client, request, metadata, (error: grpc.ServiceError | null, value: Rec) => {
        if (!error) return resolve({ code: "OK", message: "", requestId: "", body: value, raw: json(value) });
        const bin = error.metadata.get("grpc-status-details-bin")[0] as Buffer | undefined;
        const detail = bin ? findTrailerError(new Headers({ "grpc-status-details-bin": bin.toString("base64").replace(/=+$/, "") }))?.findDetails(ApiErrorSchema)[0] : undefined;
        resolve({ code: detail?.code ?? `grpc:${error.code}`, grpcCode: error.code, message: detail?.message ?? error.details, requestId: detail?.requestId ?? "", raw: `${error.details} ${json(detail ?? {})}` });
      });
    });
  }
}
