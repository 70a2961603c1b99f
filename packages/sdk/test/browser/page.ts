// The page test/browser.test.ts loads in headless Chromium: the SDK's main
// entry, bundled for the browser, calling the server from another origin
// (CORS) over REST and gRPC-web — a get, a list, a typed error, a metric
// stream (over REST: the browser's WebSocket, its token in the URL) — and
// reporting what it saw.
import { HeliosDBReplicationClient, NotFoundError } from "../../src/index";

// The sockets the SDK opens, as "path?credential".
const sockets: string[] = [];
const PlatformWebSocket = globalThis.WebSocket;
globalThis.WebSocket = class extends PlatformWebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    const u = new URL(url);
    sockets.push(`${u.pathname}?${[...u.searchParams.keys()].join("&")}`);
  }
};

async function runSdk(baseUrl: string, token: string, id: string): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  for (const transport of ["rest", "grpc-web"] as const) {
    sockets.length = 0;
    const client = new HeliosDBReplicationClient({ baseUrl, token, transport });
    const replication = await client.replications.get(id);
    const page = await client.replications.list({ tenantId: "tenant-123" });
    const missing = (await client.replications.get("00000000-0000-4000-8000-000000000000").catch((e: unknown) => e)) as NotFoundError;
    const samples: string[] = [];
    for await (const sample of client.replications.streamMetrics(id, { intervalSeconds: 1 })) {
      samples.push(sample.replicationId);
      if (samples.length === 2) break;
    }
    seen[transport] = {
      id: replication.id,
      tenantId: replication.tenantId,
      listed: page.items.map((r) => r.id),
      error: { notFound: missing instanceof NotFoundError, name: missing.name, code: missing.code, status: missing.status, requestId: missing.requestId ?? "" },
      samples,
      sockets: [...sockets],
    };
  }
  return seen;
}

(globalThis as unknown as { runSdk: typeof runSdk }).runSdk = runSdk;
