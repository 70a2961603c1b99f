// The WebSocket of a REST client's streams in Node: `ws`, which sends the
// credential as a header (not in the URL), and reads a refused upgrade's
// answer — the §6 envelope of a 401, 403 or 429 — into the same error as
// any other call's, so that a stream gives up on a refused credential and
// waits out a rate limit instead of retrying blind.
import WebSocket from "ws";
import { errorFromResponse } from "../core/errors";
import type { WebSocketFactory, WebSocketLike } from "../internal/web-socket";

export const nodeWebSocket: WebSocketFactory = {
  sendsHeaders: true,
  open(url, headers) {
    const socket = new WebSocket(url, { headers });
    socket.on("unexpected-response", (request, response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const error = errorFromResponse(response.statusCode ?? 500, json, { get: (name) => headerValue(response.headers[name]) });
        // First the refusal; the error terminate() raises after it finds the stream ended already.
        socket.onerror?.({ error } as never);
        request.destroy();
        socket.terminate();
      });
    });
    return socket as unknown as WebSocketLike;
  },
};

function headerValue(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}
