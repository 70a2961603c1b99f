// The fetch under the streams of the Connect and gRPC-web transports, against
// a bare node:http server: a watch aborted after a garbage collection still closes
// its connection, so the server's call ends (with Node's own fetch it stayed
// open: src/internal/abortable-fetch.ts); a body that is not aborted arrives
// whole, and a connection lost mid-body is an error, not an end.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create, toBinary } from "@bufbuild/protobuf";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { WatchTenantRoutingResponseSchema } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { HeliosDBReplicationClient } from "../src/index";
import { abortableFetch } from "../src/internal/abortable-fetch";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

let server: http.Server;
let url: string;
const closed: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    res.on("close", () => closed.push(req.url!));
    if (req.url === "/whole") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(16_384, i));
      res.end();
    } else if (req.url === "/cut") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write("first");
      setTimeout(() => res.socket?.destroy(), 50);
    } else {
      // One message of a Connect or gRPC-web server stream (an envelope: flags, length, the message in the request's
      // format), then nothing, as a watch with no change.
      const type = req.headers["content-type"] ?? "";
      res.writeHead(200, { "content-type": type });
      const routing = { routing: { tenantId: "tenant-gc", version: 1n } };
      const message = type.includes("proto")
        ? Buffer.from(toBinary(WatchTenantRoutingResponseSchema, create(WatchTenantRoutingResponseSchema, routing)))
        : Buffer.from(JSON.stringify({ routing: { tenantId: "tenant-gc", version: "1" } }));
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(message.length, 1);
      res.write(Buffer.concat([prefix, message]));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

test.each([
  ["a REST client (Connect on the REST port)", { webSocket: false as const }],
  ["Connect", { transport: "connect" as const }],
  ["gRPC-web", { transport: "grpc-web" as const }],
])("a watch aborted after a garbage collection closes its connection: %s", async (_, transport) => {
  closed.length = 0;
  const client = new HeliosDBReplicationClient({ token: "t", baseUrl: `${url}/v1`, ...transport });
  const watch = client.routing.watch("tenant-gc");
  const seen: bigint[] = [];
  watch.on("data", (r) => seen.push(r.version));
  await waitFor(() => seen.length === 1, "the routing now");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  watch.abort();
  await waitFor(() => closed.includes("/heliosdb.replication.v1.RoutingService/WatchTenantRouting"), "the server saw the connection close", 5_000);
  expect(seen).toEqual([1n]);
});

test("a body not aborted arrives whole; a connection lost mid-body is an error", async () => {
  const caller = new AbortController();
  const whole = await abortableFetch()(`${url}/whole`, { signal: caller.signal });
  const bytes = new Uint8Array(await whole.arrayBuffer());
  expect(bytes.length).toBe(64 * 16_384);
  expect([bytes[0], bytes[16_384], bytes.at(-1)]).toEqual([0, 1, 63]);

  const cut = await abortableFetch()(`${url}/cut`, { signal: caller.signal });
  await expect(cut.arrayBuffer()).rejects.toThrow();
});
