// The WebSocket API of spec §4 at /v1/ws. Its milestone (subscriptions to
// metrics and events) is not here yet; what is: an upgrade is authenticated
// through the interceptor chain (upgrade.ts) before anything else, so an
// unauthenticated client gets 401 with the §6 envelope, and an
// authenticated one 501 UNIMPLEMENTED, as every other RPC of a later
// milestone. A plain GET /v1/ws (no Upgrade) is the REST transcoder's 501.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { apiError } from "./errors";
import type { UpgradeHandler } from "./listen";
import { refuseUpgrade, type UpgradeCaller } from "./upgrade";

export const WS_PATH = "/v1/ws";

/** The upgrade hook of the HTTP/1.1 listener: takes upgrades to /v1/ws, declines the rest (served as plain requests). */
export function webSocketGateway(authenticate: (req: IncomingMessage) => Promise<UpgradeCaller>): UpgradeHandler {
  return (req: IncomingMessage, socket: Duplex) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== WS_PATH) return false;
    authenticate(req).then(
      (caller) => refuseUpgrade(socket, apiError("UNIMPLEMENTED", "the WebSocket API (/v1/ws) arrives with the streaming milestone", { milestone: "streaming" }), req, caller.requestId),
      (e: unknown) => refuseUpgrade(socket, e, req),
    );
    return true;
  };
}
