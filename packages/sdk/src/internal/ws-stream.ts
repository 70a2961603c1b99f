// A REST client's streams over the WebSocket API (spec §4, /v1/ws): one
// socket per stream, one subscription on it — the channel of the streaming
// RPC called — and its frames read back into that RPC's messages, the same
// objects gRPC gives (the server writes timestamps with all their digits and
// only numbers that read back as the same text). One connection per call:
// ResumableStream reconnects, resuming events from the last cursor. Streams
// the socket has no channel for (and browser clients holding an API key)
// take `fallback`, the Connect protocol on the same port.
import { create, fromJson, type DescMessage, type DescMethodServerStreaming, type MessageShape } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ERROR_CODES, isErrorCode, ReplicationEventSchema, ReplicationMetricsSchema, ReplicationService } from "@heliosdb/replication-proto";
import { ConnectionError, errorFromResponse, HeliosDBError } from "../core/errors";
import type { Transport } from "./transport";
import type { WebSocketFactory, WebSocketLike } from "./web-socket";

export interface WebSocketStreamConfig {
  /** The API's base URL, /v1 included (http becomes ws, https wss). */
  baseUrl: string;
  headers: () => Record<string, string> | Promise<Record<string, string>>;
  webSocket: WebSocketFactory;
}

type Frame = Record<string, unknown>;

const M = ReplicationService.method;

// The socket's channels: the subscribe message of a call of the RPC, and its message from a frame.
const CHANNELS = new Map<DescMethodServerStreaming, { subscribe(request: never): Frame; read(frame: Frame): unknown }>([
  [
    M.streamReplicationMetrics,
    {
      subscribe: (r: MessageShape<typeof M.streamReplicationMetrics.input>) => ({
        channel: "metrics",
        filters: { replication_id: r.replicationId, ...(r.intervalSeconds ? { interval_seconds: r.intervalSeconds } : {}) },
      }),
      read: (f) => {
        const data = (f.data ?? {}) as Record<string, number | undefined>;
        return create(ReplicationMetricsSchema, {
          replicationId: String(f.replication_id ?? ""),
          timestamp: timestamp(f.timestamp),
          replicationLagSeconds: data.replication_lag_seconds ?? 0,
          replicationLagBytes: BigInt(data.replication_lag_bytes ?? 0),
          rowsPerSecond: data.rows_per_second ?? 0,
          bytesPerSecond: BigInt(data.bytes_per_second ?? 0),
          compressionRatio: data.compression_ratio ?? 0,
          cpuUsagePercent: data.cpu_usage_percent ?? 0,
          memoryUsageBytes: BigInt(data.memory_usage_bytes ?? 0),
        });
      },
    },
  ],
  [
    M.streamReplicationEvents,
    {
      subscribe: (r: MessageShape<typeof M.streamReplicationEvents.input>) => ({
        channel: "events",
        filters: {
          ...(r.replicationId ? { replication_id: r.replicationId } : {}),
          ...(r.tenantId ? { tenant_id: r.tenantId } : {}),
          ...(r.severities.length ? { severities: r.severities } : {}),
          ...(r.eventTypes.length ? { event_types: r.eventTypes } : {}),
        },
        ...(r.cursor ? { cursor: r.cursor } : {}),
      }),
      read: (f) =>
        create(ReplicationEventSchema, {
          replicationId: String(f.replication_id ?? ""),
          tenantId: String(f.tenant_id ?? ""),
          timestamp: timestamp(f.timestamp),
          eventType: String(f.event_type ?? ""),
          severity: String(f.severity ?? ""),
          message: String(f.message ?? ""),
          // §4.3 writes numbers and booleans as such; the RPC's map holds their text.
          details: Object.fromEntries(Object.entries((f.details ?? {}) as Frame).map(([k, v]) => [k, String(v)])),
          cursor: String(f.cursor ?? ""),
        }),
    },
  ],
]);

/** Streams over the WebSocket API where it has the channel (and the credential can travel), else over `fallback`. */
export function webSocketStreams(config: WebSocketStreamConfig, fallback: Pick<Transport, "stream">, apiKey: boolean): Pick<Transport, "stream"> {
  const usable = config.webSocket.sendsHeaders || !apiKey;
  return {
    stream<I extends DescMessage, O extends DescMessage>(method: DescMethodServerStreaming<I, O>, message: MessageShape<I>, signal: AbortSignal) {
      const channel = usable ? CHANNELS.get(method as DescMethodServerStreaming) : undefined;
      if (!channel) return fallback.stream(method, message, signal);
      return subscription(config, { channel: channel.subscribe(message as never), read: channel.read }, signal) as AsyncIterable<MessageShape<O>>;
    },
  };
}

async function* subscription(config: WebSocketStreamConfig, sub: { channel: Frame; read(frame: Frame): unknown }, signal: AbortSignal): AsyncGenerator<unknown> {
  const headers = await config.headers();
  const url = new URL(`${config.baseUrl.replace(/\/+$/, "")}/ws`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? "")?.[1];
  if (!config.webSocket.sendsHeaders && bearer) url.searchParams.set("token", bearer);
  const frames = new FrameQueue();
  let socket: WebSocketLike;
  try {
    socket = config.webSocket.open(url.toString(), config.webSocket.sendsHeaders ? headers : {});
  } catch (e) {
    throw new ConnectionError({ code: "CONNECTION_ERROR", message: `could not open the WebSocket to ${url.origin}: ${(e as Error).message}`, cause: e });
  }
  const stop = () => socket.close(1000, "the stream was ended");
  signal.addEventListener("abort", stop, { once: true });
  socket.onopen = () => socket.send(JSON.stringify({ action: "subscribe", ...sub.channel }));
  socket.onmessage = (event) => frames.push(event.data);
  socket.onerror = (event) => frames.end(event.error instanceof HeliosDBError ? event.error : connectionLost(`the WebSocket to ${url.origin} failed`));
  socket.onclose = (event) => frames.end(connectionLost(`the WebSocket closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`));
  try {
    for await (const text of frames) {
      const frame = parse(text);
      if (frame.error) throw errorOfFrame(frame.error);
      if (typeof frame.action === "string") continue; // subscribed
      yield sub.read(frame);
    }
  } finally {
    signal.removeEventListener("abort", stop);
    stop();
  }
}

/** The frames of one socket, in order, until it ends (with the error that ended it). */
class FrameQueue implements AsyncIterable<unknown> {
  private readonly items: unknown[] = [];
  private waiting: (() => void) | undefined;
  private error: unknown;
  private done = false;

  push(item: unknown): void {
    if (this.done) return;
    this.items.push(item);
    this.wake();
  }

  end(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.wake();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    for (;;) {
      if (this.items.length > 0) yield this.items.shift();
      else if (this.done) throw this.error;
      else await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

function parse(data: unknown): Frame {
  try {
    const value = JSON.parse(typeof data === "string" ? data : String(data)) as unknown;
    if (value && typeof value === "object") return value as Frame;
  } catch {
    // below
  }
  throw new HeliosDBError({ code: "INTERNAL_ERROR", message: "the server sent a WebSocket frame that is not a JSON object" });
}

// The §6 envelope of a refused subscription or a feed that ended (a deleted replication's NOT_FOUND).
function errorOfFrame(envelope: unknown): HeliosDBError {
  const code = (envelope as { code?: unknown }).code;
  const status = typeof code === "string" && isErrorCode(code) ? ERROR_CODES[code].http : 500;
  const retryAfter = (envelope as { retry_after_seconds?: unknown }).retry_after_seconds;
  return errorFromResponse(status, { error: envelope }, { get: (name) => (name === "retry-after" && typeof retryAfter === "number" ? String(retryAfter) : null) });
}

function connectionLost(message: string): ConnectionError {
  return new ConnectionError({ code: "CONNECTION_ERROR", message });
}

function timestamp(value: unknown): Timestamp | undefined {
  if (typeof value !== "string" || !value) return undefined;
  try {
    return fromJson(TimestampSchema, value);
  } catch {
    return undefined;
  }
}
