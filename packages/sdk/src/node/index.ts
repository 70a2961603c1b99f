// @heliosdb/replication-sdk/node: what only Node.js can do — gRPC over
// HTTP/2 (port 50051), and `ws` for the WebSocket API. A separate entry, so that a browser bundle of the
// main entry never pulls in node:http2.
//
//   import { HeliosDBReplicationClient } from "@heliosdb/replication-sdk";
//   import { grpc } from "@heliosdb/replication-sdk/node";
//   const client = new HeliosDBReplicationClient({ apiKey, baseUrl: "http://localhost:8080/v1", transport: grpc("http://localhost:50051") });
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { ConnectTransportOption } from "../client";

/** The WebSocket of REST streams in Node (the main entry's default there; for bundles that do not resolve the "node" condition). */
export { nodeWebSocket } from "./web-socket";
export type { WebSocketFactory, WebSocketLike } from "../internal/web-socket";

/** The gRPC transport to `url` (the server's gRPC listener: `http://host:50051`, or https with TLS). */
export function grpc(url: string): ConnectTransportOption {
  return { connect: createGrpcTransport({ baseUrl: url }) };
}
