// The subscribers of bench:streams, in a process of their own (forked by
// main.ts once per phase): N WebSocket clients (the ws package) or N gRPC
// server streams (@grpc/grpc-js over a few HTTP/2 connections), each
// subscribed to a feed, counting what arrives in the measured window and how
// late: a message's lateness is its arrival time minus the time it carries
// (the sample's timestamp, or the moment the event was appended), on the
// same machine's clock.
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import WebSocket from "ws";

export interface SubscribeRequest {
  kind: "ws" | "grpc";
  /** ws://…/v1/ws?token=…, or host:port for gRPC. */
  target: string;
  token: string;
  channel: "metrics" | "events";
  replicationId: string;
  n: number;
  intervalSeconds: number;
  warmupMs: number;
  durationMs: number;
  /** The repository root (for the .proto files). */
  root: string;
}

export interface SubscribeResult {
  connected: number;
  deliveries: number;
  /** Bytes of the window's messages (WebSocket: the frames' text). */
  bytes: number;
  /** Lateness of the window's messages (arrival minus the time they carry), ms, sorted sample (at most 200,000). */
  latenessMs: number[];
  /** How far each gap between two of a subscriber's messages strays from the interval, ms, sorted sample (metrics only). */
  skewMs: number[];
  errors: string[];
  cpuSeconds: number;
  rssMib: number;
}

const SAMPLE_MAX = 200_000;
// Connections opened at once while subscribing (a burst of thousands of handshakes only measures the accept queue).
const OPEN_AT_ONCE = 100;

let measuring = false;
let deliveries = 0;
let bytes = 0;
const lateness: number[] = [];
const skew: number[] = [];
let gaps = 0;
const errors = new Set<string>();

// A subscriber's last arrival, for the gap to its next.
class Arrivals {
  private last = 0;
  constructor(private readonly intervalMs: number) {}
  next(): void {
    const now = Date.now();
    if (measuring && this.last && this.intervalMs) {
      gaps++;
      const stray = Math.abs(now - this.last - this.intervalMs);
      if (skew.length < SAMPLE_MAX) skew.push(stray);
      else skew[Math.floor(Math.random() * gaps)] = stray;
    }
    this.last = now;
  }
}

function arrived(sentAtMs: number, size = 0): void {
  if (!measuring) return;
  deliveries++;
  bytes += size;
  const late = Date.now() - sentAtMs;
  if (lateness.length < SAMPLE_MAX) lateness.push(late);
  else lateness[Math.floor(Math.random() * deliveries)] = late;
}

// The time a message carries: a sample's timestamp, or the append time an event's details hold.
function sentAt(message: { timestamp?: unknown; details?: Record<string, unknown> }): number {
  const appended = message.details?.bench_appended_at_ms;
  if (appended !== undefined) return Number(appended);
  if (typeof message.timestamp === "string") return Date.parse(message.timestamp);
  const t = message.timestamp as { seconds: string; nanos: number } | undefined;
  return t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : Date.now();
}

async function openWs(r: SubscribeRequest): Promise<{ close: () => void; connected: () => number }> {
  const sockets: WebSocket[] = [];
  let connected = 0;
  const filters = r.channel === "metrics" ? { replication_id: r.replicationId, interval_seconds: r.intervalSeconds } : { replication_id: r.replicationId };
  const open = () =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(r.target, { perMessageDeflate: false });
      sockets.push(ws);
      const arrivals = new Arrivals(r.channel === "metrics" ? r.intervalSeconds * 1000 : 0);
      ws.on("open", () => {
        ws.send(JSON.stringify({ action: "subscribe", channel: r.channel, filters }));
      });
      ws.on("message", (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { action?: string; error?: { code: string; message: string }; timestamp?: string };
        if (m.action === "subscribed") {
          connected++;
          return resolve();
        }
        if (m.error) {
          errors.add(`${m.error.code}: ${m.error.message}`);
          return resolve();
        }
        if (m.action) return;
        arrivals.next();
        arrived(sentAt(m), data.length);
      });
      ws.on("error", (e) => {
        errors.add(e.message);
        resolve();
      });
      ws.on("close", (code, reason) => {
        if (code !== 1000 && code !== 1005) errors.add(`closed ${code} ${reason.toString()}`);
        resolve();
      });
    });
  for (let i = 0; i < r.n; i += OPEN_AT_ONCE) await Promise.all(Array.from({ length: Math.min(OPEN_AT_ONCE, r.n - i) }, open));
  return { close: () => sockets.forEach((s) => s.close(1000)), connected: () => connected };
}

async function openGrpc(r: SubscribeRequest): Promise<{ close: () => void; connected: () => number }> {
  const definition = protoLoader.loadSync("heliosdb/replication/v1/replication.proto", {
    includeDirs: [join(r.root, "proto"), join(r.root, "node_modules/google-proto-files")],
    longs: String,
  });
  const Service = (grpc.loadPackageDefinition(definition) as never as { heliosdb: { replication: { v1: { ReplicationService: grpc.ServiceClientConstructor } } } }).heliosdb.replication.v1.ReplicationService;
  // Streams spread over a few connections, as a fleet of clients would (one connection carries at most so many streams well).
  const clients = Array.from({ length: Math.max(1, Math.ceil(r.n / 1000)) }, (_, i) => new Service(r.target, grpc.credentials.createInsecure(), { "grpc.channel_id": i } as never));
  const calls: grpc.ClientReadableStream<unknown>[] = [];
  let connected = 0;
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${r.token}`);
  const method = r.channel === "metrics" ? "StreamReplicationMetrics" : "StreamReplicationEvents";
  // proto-loader's default: field names in lowerCamelCase.
  const request = r.channel === "metrics" ? { replicationId: r.replicationId, intervalSeconds: r.intervalSeconds } : { replicationId: r.replicationId };
  const open = (i: number) =>
    new Promise<void>((resolve) => {
      const client = clients[i % clients.length] as unknown as Record<string, (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>>;
      const call = client[method]!(request, metadata);
      calls.push(call);
      const arrivals = new Arrivals(r.channel === "metrics" ? r.intervalSeconds * 1000 : 0);
      let first = true;
      call.on("data", (m: { timestamp?: unknown; details?: Record<string, unknown> }) => {
        if (first) {
          first = false;
          connected++;
          resolve();
        }
        arrivals.next();
        arrived(sentAt(m));
      });
      // An event stream says nothing until an event comes: its metadata says it is open.
      call.on("metadata", () => {
        if (r.channel === "events" && first) {
          first = false;
          connected++;
          resolve();
        }
      });
      call.on("error", (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) errors.add(`${e.code}: ${e.details}`);
        resolve();
      });
    });
  for (let i = 0; i < r.n; i += OPEN_AT_ONCE) await Promise.all(Array.from({ length: Math.min(OPEN_AT_ONCE, r.n - i) }, (_, j) => open(i + j)));
  return {
    close: () => {
      for (const c of calls) c.cancel();
      for (const c of clients) c.close();
    },
    connected: () => connected,
  };
}

process.on("message", async (r: SubscribeRequest) => {
  const opened = r.kind === "ws" ? await openWs(r) : await openGrpc(r);
  process.send!({ ready: opened.connected() });
  await new Promise((resolve) => setTimeout(resolve, r.warmupMs));
  const cpu = process.cpuUsage();
  measuring = true;
  process.send!({ measuring: true });
  let rss = 0;
  const watch = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 250);
  await new Promise((resolve) => setTimeout(resolve, r.durationMs));
  measuring = false;
  clearInterval(watch);
  const used = process.cpuUsage(cpu);
  const result: SubscribeResult = {
    connected: opened.connected(),
    deliveries,
    bytes,
    latenessMs: lateness.sort((a, b) => a - b),
    skewMs: skew.sort((a, b) => a - b),
    errors: [...errors].slice(0, 10),
    cpuSeconds: (used.user + used.system) / 1e6,
    rssMib: rss / 2 ** 20,
  };
  opened.close();
  process.send!({ result }, () => setTimeout(() => process.exit(0), 200));
});
