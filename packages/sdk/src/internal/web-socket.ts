// The WebSocket a REST client's streams use (spec §4): the browser's own,
// or `ws` in Node (src/node/web-socket.ts). A browser cannot set headers on
// a WebSocket, so its credential goes as `?token=` — a bearer token only:
// an API key is never put in a URL (proxies log URLs), and a browser client
// with an API key streams with the Connect protocol instead.

/** The part of the WHATWG WebSocket the SDK uses (`ws` has the same). */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  /** `error`: what the platform could tell (Node: the server's refusal as a HeliosDBError). */
  onerror: ((event: { error?: unknown }) => void) | null;
}

export interface WebSocketFactory {
  /** Whether `open` sends `headers` (Node); a browser's socket cannot. */
  readonly sendsHeaders: boolean;
  open(url: string, headers: Record<string, string>): WebSocketLike;
}

/** The platform's WebSocket, when it has one (browsers; Node from v22). */
export function platformWebSocket(): WebSocketFactory | undefined {
  const WebSocket = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!WebSocket) return undefined;
  return { sendsHeaders: false, open: (url) => new WebSocket(url) };
}
