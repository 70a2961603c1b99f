// Calls as a given token over REST (fetch) or gRPC (Connect's gRPC client
// from @connectrpc/connect-node, on the server's gRPC port), answered in
// one shape: the §6 code (or "OK"), message, details, and the REST body or
// gRPC response.
import { type JsonObject } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ApiErrorSchema, ConnectionService, ReplicationService } from "@heliosdb/replication-proto";
import type { RunningApp } from "../../src/app";

export interface Outcome {
  /** The §6 code, or "OK". */
  code: string;
  message: string;
  details: JsonObject;
  /** HTTP status over REST; the gRPC code's number over gRPC (0: OK). */
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export async function restCall(app: RunningApp, token: string, method: string, path: string, body?: unknown): Promise<Outcome> {
  const res = await fetch(`${app.urls.rest}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  const error = json?.error;
  return { code: error?.code ?? "OK", message: error?.message ?? "", details: error?.details ?? {}, status: res.status, body: json };
}

export interface Clients {
  connections: Client<typeof ConnectionService>;
  replications: Client<typeof ReplicationService>;
}

export function grpcClients(app: RunningApp): Clients {
  const transport = createGrpcTransport({ baseUrl: app.urls.grpc });
  return { connections: createClient(ConnectionService, transport), replications: createClient(ReplicationService, transport) };
}

export async function grpcCall(token: string, call: (options: { headers: Record<string, string> }) => Promise<unknown>): Promise<Outcome> {
  try {
    const body = await call({ headers: { authorization: `Bearer ${token}` } });
    return { code: "OK", message: "", details: {}, status: 0, body };
  } catch (e) {
    const error = ConnectError.from(e);
    const detail = error.findDetails(ApiErrorSchema)[0];
    return { code: detail?.code ?? `grpc:${error.code}`, message: detail?.message ?? error.rawMessage, details: (detail?.details ?? {}) as JsonObject, status: error.code, body: undefined };
  }
}

/** The fields a VALIDATION_ERROR or INVALID_REQUEST names. */
export function fields(o: Outcome): string[] {
  const violations = (o.details.violations ?? []) as { field: string }[];
  return [...violations.map((v) => v.field), ...(typeof o.details.field === "string" ? [o.details.field] : [])];
}
