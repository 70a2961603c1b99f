// The WebSocket API of spec §4 at /v1/ws. An upgrade is authenticated
// through the interceptor chain (upgrade.ts) before the handshake: the
// token as `?token=` (§4.1), or an `Authorization: Bearer` or `X-API-Key`
// header; a refusal is the HTTP answer with the §6 envelope, and no socket
// opens. Each accepted socket is a WebSocketSession (ws-session.ts) whose
// subscriptions are calls of the streaming RPCs. A plain GET /v1/ws (no
// Upgrade) is the REST transcoder's 400, saying so.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { Invoker } from "./invoke";
import type { UpgradeHandler } from "./listen";
import { refuseUpgrade, type UpgradeCaller } from "./upgrade";
import { CLOSE_GOING_AWAY, WebSocketSession, type SessionLimits } from "./ws-session";

export const WS_PATH = "/v1/ws";

export interface WebSocketOptions extends Partial<SessionLimits> {
  /** The largest message a client may send. */
  maxMessageBytes?: number;
}

const DEFAULTS: SessionLimits & { maxMessageBytes: number } = {
  heartbeatMs: 30_000,
  idleMs: 300_000,
  maxBufferedBytes: 1024 * 1024,
  maxSubscriptions: 100,
  maxMessageBytes: 64 * 1024,
};

export class WebSocketGateway {
  private readonly server: WebSocketServer;
  private readonly sessions = new Set<WebSocketSession>();
  private readonly limits: SessionLimits;

  constructor(
    private readonly authenticate: (req: IncomingMessage) => Promise<UpgradeCaller>,
    private readonly invoker: Invoker,
    options: WebSocketOptions = {},
  ) {
    const { maxMessageBytes, ...limits } = { ...DEFAULTS, ...options };
    this.limits = limits;
    // No server of its own: the HTTP/1.1 listener hands it the upgrades it accepted.
    this.server = new WebSocketServer({ noServer: true, maxPayload: maxMessageBytes, perMessageDeflate: false });
  }

  /** The upgrade hook of the HTTP/1.1 listener: takes upgrades to /v1/ws, declines the rest (served as plain requests). */
  readonly handle: UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== WS_PATH) return false;
    this.authenticate(req).then(
      (caller) => {
        if (socket.destroyed) return;
        this.server.handleUpgrade(req, socket, head, (ws) => {
          const session = new WebSocketSession(ws, caller, this.invoker, this.limits, () => this.sessions.delete(session));
          this.sessions.add(session);
        });
      },
      (e: unknown) => refuseUpgrade(socket, e, req),
    );
    return true;
  };

  /** Sockets open now. */
  get open(): number {
    return this.sessions.size;
  }

  /** Closes every socket (1001: the server is going away), ending their subscriptions. */
  close(): void {
    for (const session of [...this.sessions]) session.close(CLOSE_GOING_AWAY, "the server is shutting down");
  }
}
