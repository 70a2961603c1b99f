// The WebSocket API (spec §4) with the ws package's client, as a user's
// program speaks it: the credential as ?token=, a bearer header or an API
// key; client mistakes answered on the socket in the §6 envelope's shape
// with the socket left open; heartbeats (a client that answers no ping is
// cut off), the idle timeout (4000) and the server going away (1001).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import WebSocket from "ws";
import type { RunningApp } from "../../src/app";
import { startWorld, type World } from "../../src/testing/world";

let world: World;
let quick: RunningApp;

// A socket and every message it receives, parsed, in order.
interface Client {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  /** The next message not yet taken by next(). */
  next(): Promise<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
}

function connect(app: RunningApp, path: string, headers: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${app.ports.http}${path}`, { headers, ...options });
  const messages: Record<string, unknown>[] = [];
  const waiting: ((m: Record<string, unknown>) => void)[] = [];
  let taken = 0;
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString()) as Record<string, unknown>;
    messages.push(message);
    waiting.shift()?.(message);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  const client: Client = {
    ws,
    messages,
    closed,
    next() {
      const i = taken++;
      if (i < messages.length) return Promise.resolve(messages[i]!);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(client));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

beforeAll(async () => {
  world = await startWorld({ users: 10 });
  quick = await world.startServer({ webSocket: { heartbeatMs: 200, idleMs: 600 } });
}, 180_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe("the connection", () => {
  test("the credential as ?token= (§4.1), as a bearer header, or as an API key", async () => {
    const key = await world.rest("POST", "/api-keys", { name: "ws", roles: ["Viewer"] });
    expect(key.status).toBe(201);
    for (const [path, headers] of [
      [`/v1/ws?token=${world.token}`, {}],
      ["/v1/ws", { authorization: `Bearer ${world.token}` }],
      ["/v1/ws", { "x-api-key": key.body.secret as string }],
    ] as const) {
      const client = await connect(world.app, path, headers);
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
      client.ws.close();
      expect((await client.closed).code).toBe(1005);
    }
    await expect(connect(world.app, "/v1/ws?token=forged")).rejects.toThrow("refused: 401");
  });

  test("a client's mistakes are answered with the §6 envelope on the socket, which stays open", async () => {
    const client = await connect(world.app, `/v1/ws?token=${world.token}`);
    const sent: [string | Buffer, string, string][] = [
      ["not json", "INVALID_REQUEST", ""],
      ["[1, 2]", "INVALID_REQUEST", ""],
      [JSON.stringify({ action: "listen" }), "INVALID_REQUEST", "action"],
      [JSON.stringify({ action: "subscribe", channel: "logs" }), "INVALID_REQUEST", "channel"],
      [JSON.stringify({ action: "subscribe", channel: "events", filters: { severity: [1] } }), "INVALID_REQUEST", "filters.severity"],
      [JSON.stringify({ action: "subscribe", channel: "metrics", filters: { interval_seconds: "5" } }), "INVALID_REQUEST", "filters.interval_seconds"],
      [JSON.stringify({ action: "unsubscribe" }), "INVALID_REQUEST", "subscription_id"],
    ];
    for (const [text, code, field] of sent) {
      client.ws.send(text);
      const answer = (await client.next()) as { error: { code: string; request_id: string; details: { violations?: { field: string }[] } } };
      expect(answer.error.code, String(text)).toBe(code);
      expect(answer.error.request_id).toMatch(/^req-/);
      expect(answer.error.details.violations?.[0]?.field, String(text)).toBe(field);
    }
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(((await client.next()) as { error: { code: string } }).error.code).toBe("INVALID_REQUEST");
    client.ws.send(JSON.stringify({ action: "unsubscribe", subscription_id: "nothing" }));
    expect(await client.next()).toMatchObject({ subscription_id: "nothing", error: { code: "NOT_FOUND" } });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.ws.close();
  });

  test("a socket without a subscription that says nothing is closed as idle (4000)", async () => {
    const client = await connect(quick, `/v1/ws?token=${world.token}`);
    expect(await client.closed).toEqual({ code: 4000, reason: "idle: no subscription and no message for 1 s" });
  });

  test("a client that answers no ping is cut off", async () => {
    const client = await connect(quick, `/v1/ws?token=${world.token}`, {}, { autoPong: false });
    // Terminated: no close frame reaches the client.
    expect((await client.closed).code).toBe(1006);
  });

  test("a server shutting down closes its sockets with 1001", async () => {
    const server = await world.startServer();
    const client = await connect(server, `/v1/ws?token=${world.token}`);
    await world.stopServer(server);
    expect(await client.closed).toEqual({ code: 1001, reason: "the server is shutting down" });
  });
});
