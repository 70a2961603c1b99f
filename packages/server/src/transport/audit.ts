// What the audit log needs from a call that the interceptors do not see:
// the client's address (the HTTP handler knows it; REST, gRPC and Connect
// calls carry only the request id down) and the resource a message names.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { AuditEvent } from "../store/audit-events";
import { REQUEST_ID, requestIdOf } from "./interceptors";

/** Where audit events go (store/audit-events.ts). */
export interface AuditSink {
  record(event: AuditEvent): Promise<void>;
}

/**
 * The client address of each request in flight, by request id. The HTTP
 * handler registers every request before any protocol reads it; the request
 * keeps its client's id unless that id is already in use by another request
 * in flight, when it gets a new one (so one client cannot take another's
 * address).
 */
export class ClientAddresses {
  private readonly byRequest = new Map<string, string>();

  register(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    let id = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
    if (this.byRequest.has(id)) id = requestIdOf(undefined);
    req.headers[REQUEST_ID] = id;
    this.byRequest.set(id, req.socket?.remoteAddress ?? "");
    res.once("close", () => this.byRequest.delete(id));
  }

  /** Registers an upgrade request until its socket closes. */
  registerUpgrade(req: IncomingMessage): void {
    this.register(req, req.socket as never);
  }

  of(requestId: string | null | undefined): string {
    return (requestId && this.byRequest.get(requestId)) || "";
  }
}

const ID_FIELDS = ["id", "keyId", "connectionId", "replicationId", "migrationId", "failoverId"];
const NESTED = ["apiKey", "connection", "replication"];

/** The id a request (or a create's response) names: a replication, a connection, a key. */
export function resourceOf(message: unknown): string {
  if (!message || typeof message !== "object") return "";
  const m = message as Record<string, unknown>;
  for (const field of ID_FIELDS) if (typeof m[field] === "string" && m[field]) return m[field] as string;
  for (const field of NESTED) {
    const inner = resourceOf(m[field]);
    if (inner) return inner;
  }
  return "";
}

/** An event with every field set, from those given. */
export function auditEvent(fields: Partial<AuditEvent> & Pick<AuditEvent, "rpc" | "outcome">): AuditEvent {
  return {
    principal: "",
    credentialType: "",
    credentialId: "",
    tenantId: "",
    resource: "",
    message: "",
    requestId: "",
    clientAddress: "",
    ...fields,
  };
}
