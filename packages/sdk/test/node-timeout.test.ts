// A REST attempt's timeout in Node, against a real server that takes the
// request and never answers (or sends headers and stalls its body): the
// call fails with ConnectionTimeoutError and the SDK lets go of the socket —
// through the pool's own timeouts with the platform's fetch
// (src/node/rest-pool.ts), through its AbortSignal with a fetch of the
// application's. A caller's abort lets go at once.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createRequire } from "node:module";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AbortedError, ConnectionTimeoutError, HeliosDBReplicationClient } from "../src/index.node";
import { UNDICI_MAJOR } from "../src/node/rest-pool";

let server: http.Server;
let baseUrl: string;
/** Every socket a request came on, and whether it has closed. (An aborted fetch may open a spare connection; it carries nothing.) */
const sockets: { socket: Socket; closed: Promise<void> }[] = [];
const spare: Socket[] = [];

beforeAll(async () => {
  server = http.createServer((request, response) => {
    const socket = request.socket;
    sockets.push({ socket, closed: new Promise((r) => (socket.destroyed ? r() : socket.once("close", () => r()))) });
    // /stall: headers and half a body, then nothing. Anything else: no answer at all.
    if (request.url?.includes("stall")) {
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"id":');
    }
  });
  server.on("connection", (socket: Socket) => spare.push(socket));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  for (const socket of spare) socket.destroy();
  await new Promise((r) => server.close(r));
});

/** The call's error, and whether every socket it opened was closed by the client after it. */
async function failure(call: () => Promise<unknown>): Promise<{ error: unknown; socketsClosed: boolean }> {
  const before = sockets.length;
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  const opened = sockets.slice(before);
  expect(opened.length).toBeGreaterThan(0);
  // The server never closes them: only the client can, within a few seconds of the answer's timeout.
  const closed = await Promise.race([Promise.all(opened.map((s) => s.closed)).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
  return { error, socketsClosed: closed };
}

const client = (options: { fetch?: typeof fetch } = {}) => new HeliosDBReplicationClient({ token: "t0ken", baseUrl, timeout: 300, maxRetries: 0, ...options });

test("the undici whose pool keeps the timeout is of the major version this package depends on", () => {
  const require = createRequire(import.meta.url);
  const declared = (require("../package.json") as { dependencies: Record<string, string> }).dependencies.undici!;
  expect(declared.replace(/^[\^~]/, "").split(".")[0]).toBe(String(UNDICI_MAJOR));
  expect((require("undici/package.json") as { version: string }).version.split(".")[0]).toBe(String(UNDICI_MAJOR));
});

test("a server that never answers: ConnectionTimeoutError, and the pool closes the socket", async () => {
  const { error, socketsClosed } = await failure(() => client().replications.get("r-silent"));
  expect(error).toBeInstanceOf(ConnectionTimeoutError);
  expect((error as ConnectionTimeoutError).code).toBe("TIMEOUT");
  expect(socketsClosed).toBe(true);
});

test("a body that stalls after the headers: ConnectionTimeoutError, and the socket is closed", async () => {
  const { error, socketsClosed } = await failure(() => client().replications.get("stall"));
  expect(error).toBeInstanceOf(ConnectionTimeoutError);
  expect(socketsClosed).toBe(true);
});

test("with a fetch of the application's, the attempt's AbortSignal keeps the timeout and closes the socket", async () => {
  let dispatcherSeen = false;
  const own: typeof fetch = (input, init) => {
    dispatcherSeen ||= "dispatcher" in (init ?? {});
    return fetch(input, init);
  };
  const { error, socketsClosed } = await failure(() => client({ fetch: own }).replications.get("r-silent"));
  expect(error).toBeInstanceOf(ConnectionTimeoutError);
  expect(socketsClosed).toBe(true);
  expect(dispatcherSeen).toBe(false);
});

test("a caller's abort ends the call before its timeout and lets go of the socket", async () => {
  const controller = new AbortController();
  const c = new HeliosDBReplicationClient({ token: "t0ken", baseUrl, timeout: 60_000, maxRetries: 0 });
  setTimeout(() => controller.abort(), 100);
  const { error, socketsClosed } = await failure(() => c.replications.get("r-silent", { signal: controller.signal }));
  expect(error).toBeInstanceOf(AbortedError);
  expect(socketsClosed).toBe(true);
});
