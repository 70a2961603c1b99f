// The main entry as Node resolves it (the "node" condition of package.json's
// exports): everything the browser entry has, with a client whose REST
// streams use the WebSocket API through `ws` — Node before v22 has no
// WebSocket, and the platform's cannot send the credential as a header —
// and whose REST calls' timeouts are kept by their connection pool.
import { HeliosDBReplicationClient as PlatformClient, type ClientOptions } from "./client";
import { timeoutPool } from "./node/rest-pool";
import { nodeWebSocket } from "./node/web-socket";

export * from "./index";

export class HeliosDBReplicationClient extends PlatformClient {
  constructor(options: ClientOptions) {
    super({ webSocket: nodeWebSocket, ...options }, { restPool: timeoutPool });
  }
}
