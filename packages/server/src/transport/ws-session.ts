// One WebSocket connection of the §4 API: its subscriptions, each a call of
// a streaming RPC through the same invoker and interceptors as every
// protocol (so it is authenticated, scoped to the caller's tenant, rate
// limited and validated exactly as a gRPC stream would be); heartbeats; an
// idle timeout; and a bound on what it may leave unsent.
//
// A client's mistake is answered on the socket in the §6 envelope's shape
// ({"error": {...}}, with the subscription's id when it has one) and the
// socket stays open. The server closes it only for these reasons (codes in
// docs/observability.md): no pong to a ping (terminated), idle (4000), a
// slow consumer (1008), the server going away (1001).
import { Code, ConnectError } from "@connectrpc/connect";
import type { RawData, WebSocket } from "ws";
import { asApiError, envelope } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import type { Invoker } from "./invoke";
import type { UpgradeCaller } from "./upgrade";
import { eventMessage, metricsMessage, readClientMessage, type ClientMessage } from "./ws-messages";
import type { ReplicationEvent, ReplicationMetrics } from "@heliosdb/replication-proto";

export interface SessionLimits {
  /** A ping this often; a socket that has not answered the previous one is terminated. */
  heartbeatMs: number;
  /** A socket without a subscription that sends nothing for this long is closed (4000). */
  idleMs: number;
  /** Bytes a socket may leave unsent before it is closed as a slow consumer (1008). */
  maxBufferedBytes: number;
  /** Subscriptions one socket may hold at once. */
  maxSubscriptions: number;
}

export const CLOSE_IDLE = 4000;
export const CLOSE_SLOW_CONSUMER = 1008;
export const CLOSE_GOING_AWAY = 1001;

export class WebSocketSession {
  private readonly subscriptions = new Map<string, AbortController>();
  private readonly heartbeat: NodeJS.Timeout;
  private lastHeard = Date.now();
  private answeredPing = true;
  private counter = 0;
  private closed = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly caller: UpgradeCaller,
    private readonly invoker: Invoker,
    private readonly limits: SessionLimits,
    private readonly onEnd: () => void,
  ) {
    socket.on("message", (data, isBinary) => this.received(data, isBinary));
    socket.on("pong", () => {
      this.answeredPing = true;
    });
    socket.on("close", () => this.end());
    socket.on("error", () => this.end());
    this.heartbeat = setInterval(() => this.beat(), limits.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Closes the socket with `code` and `reason`; whatever is unsent after a second is dropped with it. */
  close(code: number, reason: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(code, reason);
    setTimeout(() => this.socket.terminate(), 1000).unref();
    this.end();
  }

  private received(data: RawData, isBinary: boolean): void {
    this.lastHeard = Date.now();
    let message: ClientMessage;
    try {
      if (isBinary) throw asApiError(new ConnectError("messages are JSON text frames", Code.InvalidArgument));
      message = readClientMessage(data.toString(), () => `s${++this.counter}`);
    } catch (e) {
      return this.sendError(e);
    }
    if (message.action === "unsubscribe") {
      const subscription = this.subscriptions.get(message.id);
      if (!subscription) return this.sendError(asApiError(new ConnectError(`no subscription ${message.id} on this socket`, Code.NotFound)), message.id);
      this.subscriptions.delete(message.id);
      subscription.abort(new ConnectError("unsubscribed", Code.Canceled));
      this.send({ action: "unsubscribed", subscription_id: message.id });
      return;
    }
    if (this.subscriptions.has(message.id)) return this.sendError(asApiError(new ConnectError(`subscription ${message.id} is already open on this socket`, Code.AlreadyExists)), message.id);
    if (this.subscriptions.size >= this.limits.maxSubscriptions) {
      return this.sendError(asApiError(new ConnectError(`a socket holds at most ${this.limits.maxSubscriptions} subscriptions`, Code.ResourceExhausted)), message.id);
    }
    this.subscribe(message);
  }

  private subscribe(message: Extract<ClientMessage, { action: "subscribe" }>): void {
    const { id, channel } = message;
    const controller = new AbortController();
    this.subscriptions.set(id, controller);
    // A call of its own: its own request id, the upgrade's credentials.
    const header = new Headers(this.caller.header);
    header.set(REQUEST_ID, requestIdOf(undefined));
    const write = channel === "metrics" ? (m: unknown) => metricsMessage(id, m as ReplicationMetrics) : (m: unknown) => eventMessage(id, m as ReplicationEvent);
    void (async () => {
      try {
        // Acknowledged once the subscription is open (checked, scoped, its start fixed): every later event will come.
        const opened = () => void this.send({ action: "subscribed", channel, subscription_id: id });
        const res = await this.invoker.stream({ method: message.method, message: message.request, header, requestMethod: "GET", url: "/v1/ws", controller, opened });
        for await (const m of res.message) if (!this.send(write(m))) break;
        // A stream that ends by itself (it does not, unless its subject goes away without an error) says so.
        if (!controller.signal.aborted) this.send({ action: "ended", subscription_id: id });
      } catch (e) {
        // Ended by an unsubscribe or the socket's end: nothing to say, nobody to say it to.
        if (!controller.signal.aborted) this.sendError(e, id);
      } finally {
        if (this.subscriptions.get(id) === controller) this.subscriptions.delete(id);
      }
    })();
  }

  // False once the socket cannot take it: closed, or so far behind that it is closed now.
  private send(message: object | string): boolean {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return false;
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CLOSE_SLOW_CONSUMER, `slow consumer: more than ${this.limits.maxBufferedBytes} bytes unsent`);
      return false;
    }
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
    return true;
  }

  private sendError(e: unknown, subscriptionId?: string): void {
    const error = asApiError(e);
    const { body } = envelope(error, error.metadata.get(REQUEST_ID) ?? this.caller.requestId);
    this.send(subscriptionId ? { ...body, subscription_id: subscriptionId } : body);
  }

  private beat(): void {
    if (!this.answeredPing) {
      this.socket.terminate();
      return this.end();
    }
    if (this.subscriptions.size === 0 && Date.now() - this.lastHeard >= this.limits.idleMs) {
      return this.close(CLOSE_IDLE, `idle: no subscription and no message for ${Math.round(this.limits.idleMs / 1000)} s`);
    }
    this.answeredPing = false;
    this.socket.ping();
  }

  // Everything the socket holds goes with it: its streams' calls, its timer.
  private end(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const subscription of this.subscriptions.values()) subscription.abort(new ConnectError("the socket closed", Code.Canceled));
    this.subscriptions.clear();
    this.onEnd();
  }
}
