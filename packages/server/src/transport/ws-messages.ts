// The WebSocket API's messages (spec §4): what a client may send, read into
// the request of the streaming RPC it stands for, and what the server sends,
// written from that RPC's messages in the shapes of §4.2 and §4.3. A
// subscription is a call of StreamReplicationMetrics or
// StreamReplicationEvents, so its filters mean exactly what the RPC's fields
// mean and the same rules (tenant scope, validation) answer it.
import { create, toJson, type DescMethodServerStreaming, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ReplicationService,
  StreamEventsRequestSchema,
  StreamMetricsRequestSchema,
  type ReplicationEvent,
  type ReplicationMetrics,
} from "@heliosdb/replication-proto";
import { apiError } from "./errors";

/** What a client sends: subscribe to a channel, or end a subscription. */
export type ClientMessage =
  | { action: "subscribe"; id: string; channel: Channel; request: MessageShape<DescMessage>; method: DescMethodServerStreaming }
  | { action: "unsubscribe"; id: string };

export type Channel = "metrics" | "events";

/** The longest subscription id a client may choose. */
const MAX_ID = 128;

/**
 * A client's text frame as a ClientMessage; anything else is an
 * INVALID_REQUEST (or VALIDATION_ERROR) naming what is wrong. `nextId`
 * names a subscription the client did not name.
 */
export function readClientMessage(text: string, nextId: () => string): ClientMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("", "the message is not JSON");
  }
  if (!isObject(value)) throw invalid("", "the message must be a JSON object");
  const id = value.subscription_id ?? value.id;
  if (id !== undefined && (typeof id !== "string" || !id || id.length > MAX_ID)) throw invalid("subscription_id", `a string of 1 to ${MAX_ID} characters`);
  if (value.action === "unsubscribe") {
    if (id === undefined) throw invalid("subscription_id", "required to unsubscribe");
    return { action: "unsubscribe", id };
  }
  if (value.action !== "subscribe") throw invalid("action", 'one of "subscribe", "unsubscribe"');
  const filters = value.filters ?? {};
  if (!isObject(filters)) throw invalid("filters", "must be an object");
  const cursor = value.cursor ?? filters.cursor;
  if (value.channel === "metrics") {
    const request = create(StreamMetricsRequestSchema, {
      replicationId: text_(filters, "replication_id"),
      intervalSeconds: integer(filters, "interval_seconds"),
    });
    return { action: "subscribe", id: id ?? nextId(), channel: "metrics", request, method: ReplicationService.method.streamReplicationMetrics };
  }
  if (value.channel === "events") {
    if (cursor !== undefined && typeof cursor !== "string") throw invalid("cursor", "must be a string");
    const request = create(StreamEventsRequestSchema, {
      replicationId: text_(filters, "replication_id"),
      tenantId: text_(filters, "tenant_id"),
      // §4.3 spells it `severity` and gives a list; one value is a list of one.
      severities: list(filters, "severity", "severities"),
      eventTypes: list(filters, "event_type", "event_types"),
      cursor: cursor ?? "",
    });
    return { action: "subscribe", id: id ?? nextId(), channel: "events", request, method: ReplicationService.method.streamReplicationEvents };
  }
  throw invalid("channel", 'one of "metrics", "events"');
}

/** §4.2: a metrics sample, as the frame's text. */
export function metricsMessage(id: string, m: ReplicationMetrics): string {
  return framed("metrics", id, m, () => {
    const data: Record<string, unknown> = {
      replication_lag_seconds: m.replicationLagSeconds,
      replication_lag_bytes: Number(m.replicationLagBytes),
      rows_per_second: m.rowsPerSecond,
      bytes_per_second: Number(m.bytesPerSecond),
      compression_ratio: m.compressionRatio,
    };
    // Only figures that were measured (the RPC leaves the others unset).
    if (m.cpuUsagePercent) data.cpu_usage_percent = m.cpuUsagePercent;
    if (m.memoryUsageBytes) data.memory_usage_bytes = Number(m.memoryUsageBytes);
    return { replication_id: m.replicationId, timestamp: iso(m.timestamp), data };
  });
}

/** §4.3: an event, with its cursor (a subscribe may pass it back to resume after it), as the frame's text. */
export function eventMessage(id: string, e: ReplicationEvent): string {
  return framed("events", id, e, () => ({
    event_type: e.eventType,
    severity: e.severity,
    replication_id: e.replicationId,
    tenant_id: e.tenantId,
    timestamp: iso(e.timestamp),
    message: e.message,
    details: Object.fromEntries(Object.entries(e.details).map(([k, v]) => [k, detailValue(v)])),
    cursor: e.cursor,
  }));
}

// The feeds hand every subscriber the same message object: its JSON is
// written once, and each subscriber's frame is that text behind its channel
// and subscription id.
const bodies = new WeakMap<object, string>();

function framed(channel: Channel, id: string, message: object, body: () => Record<string, unknown>): string {
  let text = bodies.get(message);
  if (text === undefined) bodies.set(message, (text = JSON.stringify(body()).slice(1)));
  return `{"channel":"${channel}","subscription_id":${JSON.stringify(id)},${text}`;
}

// The event's details travel as strings (a proto map); §4.3 shows numbers as numbers ("retry_count": 3).
// Only a number that reads back as the same text ("1.50" stays a string), so
// that a client turning values back into strings gets the RPC's details.
function detailValue(v: string): string | number | boolean {
  if (/^-?(0|[1-9]\d{0,14})(\.\d+)?$/.test(v) && String(Number(v)) === v) return Number(v);
  if (v === "true" || v === "false") return v === "true";
  return v;
}

// RFC 3339 with every digit the timestamp has (protobuf's JSON form), so that a
// client reading the frame gets the same Timestamp as over gRPC.
function iso(t: Timestamp | undefined): string {
  return t ? (toJson(TimestampSchema, t) as string) : "";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function text_(filters: Record<string, unknown>, name: string): string {
  const v = filters[name];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw invalid(`filters.${name}`, "must be a string");
  return v;
}

function integer(filters: Record<string, unknown>, name: string): number {
  const v = filters[name];
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) throw invalid(`filters.${name}`, "must be an integer");
  return v;
}

function list(filters: Record<string, unknown>, ...names: string[]): string[] {
  const name = names.find((n) => filters[n] !== undefined && filters[n] !== null);
  if (!name) return [];
  const v = filters[name];
  const values = Array.isArray(v) ? v : [v];
  if (!values.every((x) => typeof x === "string")) throw invalid(`filters.${name}`, "must be a string or a list of strings");
  return values as string[];
}

function invalid(field: string, description: string) {
  return apiError("INVALID_REQUEST", field ? `${field}: ${description}` : description, { violations: [{ field, description }] });
}
