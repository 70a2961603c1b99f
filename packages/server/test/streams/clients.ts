// Test support: the server streams (ReplicationService's two, the routing
// watch) opened by real clients — grpc-js with our .proto files (proto-loader), and Connect's node
// transports speaking Connect, gRPC-web and gRPC — each reduced to one shape:
// the messages as they arrive (proto3 JSON names in camelCase) and how the
// call ended (OK, or the §6 code with its details).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { toJson } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { DescMessage, DescService } from "@bufbuild/protobuf";
import {
  ApiErrorSchema,
  ReplicationEventSchema,
  ReplicationMetricsSchema,
  ReplicationService,
  RoutingService,
  WatchTenantRoutingResponseSchema,
} from "@heliosdb/replication-proto";

export const PROTOCOLS = ["grpc-js", "connect", "grpc-web", "grpc"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface Ending {
  /** "OK", or the §6 code of the error that ended the stream. */
  code: string;
  grpcCode?: number;
  message: string;
  details: Record<string, unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Message = Record<string, any>;

export interface Stream {
  messages: Message[];
  /** Resolves when the stream ends, by the server or by cancel(). */
  ended: Promise<Ending>;
  /** Resolves once `n` messages have arrived (rejects if the stream ends first). */
  received(n: number): Promise<Message[]>;
  cancel(): void;
}

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

type GrpcClient = grpc.Client & Record<string, (request: object, metadata: grpc.Metadata, options?: grpc.CallOptions) => grpc.ClientReadableStream<Message>>;

// Each stream by its RPC's name: its service, its method's local name, the schema of its messages.
const STREAMS: Record<string, { service: DescService; local: string; schema: DescMessage }> = {
  StreamReplicationEvents: { service: ReplicationService, local: "streamReplicationEvents", schema: ReplicationEventSchema },
  StreamReplicationMetrics: { service: ReplicationService, local: "streamReplicationMetrics", schema: ReplicationMetricsSchema },
  WatchTenantRouting: { service: RoutingService, local: "watchTenantRouting", schema: WatchTenantRoutingResponseSchema },
};

/** Clients of one server: `http` is its port 8080 equivalent (Connect, gRPC-web), `grpc` its gRPC port. */
export class StreamClients {
  private readonly grpcJs: Record<string, GrpcClient>;
  private readonly transports: Record<"connect" | "grpc-web" | "grpc", Transport>;

  constructor(ports: { http: number; grpc: number }) {
    const definition = protoLoader.loadSync(["heliosdb/replication/v1/replication.proto", "heliosdb/replication/v1/routing.proto"], {
      includeDirs: [join(ROOT, "proto"), join(ROOT, "node_modules/google-proto-files")],
      longs: String,
      enums: String,
      defaults: false,
    });
    const v1 = (grpc.loadPackageDefinition(definition) as never as { heliosdb: { replication: { v1: Record<string, grpc.ServiceClientConstructor> } } }).heliosdb.replication.v1;
    this.grpcJs = Object.fromEntries(
      ["ReplicationService", "RoutingService"].map((name) => [name, new v1[name]!(`127.0.0.1:${ports.grpc}`, grpc.credentials.createInsecure()) as never]),
    );
    const http = `http://127.0.0.1:${ports.http}`;
    this.transports = {
      connect: createConnectTransport({ baseUrl: http, httpVersion: "1.1" }),
      "grpc-web": createGrpcWebTransport({ baseUrl: http, httpVersion: "1.1" }),
      grpc: createGrpcTransport({ baseUrl: `http://127.0.0.1:${ports.grpc}` }),
    };
  }

  close(): void {
    for (const c of Object.values(this.grpcJs)) c.close();
  }

  events(protocol: Protocol, request: Message, token: string, options: { deadlineMs?: number } = {}): Stream {
    return this.open(protocol, "StreamReplicationEvents", request, token, options);
  }

  metrics(protocol: Protocol, request: Message, token: string, options: { deadlineMs?: number } = {}): Stream {
    return this.open(protocol, "StreamReplicationMetrics", request, token, options);
  }

  /** WatchTenantRouting: each message is `{ routing }`. */
  routing(protocol: Protocol, request: Message, token: string, options: { deadlineMs?: number } = {}): Stream {
    return this.open(protocol, "WatchTenantRouting", request, token, options);
  }

  private open(protocol: Protocol, method: keyof typeof STREAMS, request: Message, token: string, options: { deadlineMs?: number }): Stream {
    const { service, local, schema } = STREAMS[method]!;
    const messages: Message[] = [];
    const waiters: { n: number; resolve: (m: Message[]) => void; reject: (e: Error) => void }[] = [];
    let ending: Ending | undefined;
    let settle!: (e: Ending) => void;
    const ended = new Promise<Ending>((resolve) => (settle = resolve));
    const push = (m: Message) => {
      messages.push(m);
      for (const w of [...waiters]) if (messages.length >= w.n) waiters.splice(waiters.indexOf(w), 1), w.resolve(messages.slice(0, w.n));
    };
    const end = (e: Ending) => {
      if (ending) return;
      ending = e;
      for (const w of waiters.splice(0)) w.reject(new Error(`the stream ended (${e.code}: ${e.message}) after ${messages.length} of ${w.n} messages`));
      settle(e);
    };
    let cancel: () => void;
    if (protocol === "grpc-js") {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token}`);
      // proto-loader (keepCase false) names fields in camelCase, in requests and messages alike.
      const grpcJs = this.grpcJs[service.name]!;
      const call = grpcJs[method]!.call(grpcJs, request, metadata, options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {});
      call.on("data", (m: Message) => push(m));
      call.on("error", (e: grpc.ServiceError) => {
        const bin = e.metadata?.get("grpc-status-details-bin")[0] as Buffer | undefined;
        const detail = bin ? findTrailerError(new Headers({ "grpc-status-details-bin": bin.toString("base64").replace(/=+$/, "") }))?.findDetails(ApiErrorSchema)[0] : undefined;
        end({ code: detail?.code ?? `grpc:${e.code}`, grpcCode: e.code, message: detail?.message ?? e.details, details: (detail?.details as Record<string, unknown>) ?? {} });
      });
      call.on("end", () => end({ code: "OK", message: "", details: {} }));
      cancel = () => call.cancel();
    } else {
      const controller = new AbortController();
      const client = createClient(service, this.transports[protocol]) as never as Record<string, (r: Message, o: object) => AsyncIterable<object>>;
      void (async () => {
        try {
          for await (const m of client[local]!(request, {
            headers: { authorization: `Bearer ${token}` },
            signal: controller.signal,
            ...(options.deadlineMs ? { timeoutMs: options.deadlineMs } : {}),
          })) {
            push(toJson(schema, m as never) as Message);
          }
          end({ code: "OK", message: "", details: {} });
        } catch (e) {
          const error = ConnectError.from(e);
          const detail = error.findDetails(ApiErrorSchema)[0];
          end({ code: detail?.code ?? `connect:${error.code}`, grpcCode: error.code, message: detail?.message ?? error.rawMessage, details: (detail?.details as Record<string, unknown>) ?? {} });
        }
      })();
      cancel = () => controller.abort();
    }
    return {
      messages,
      ended,
      received(n) {
        if (messages.length >= n) return Promise.resolve(messages.slice(0, n));
        if (ending) return Promise.reject(new Error(`the stream ended (${ending.code}: ${ending.message}) after ${messages.length} of ${n} messages`));
        return new Promise((resolve, reject) => waiters.push({ n, resolve, reject }));
      },
      cancel: () => cancel(),
    };
  }
}

