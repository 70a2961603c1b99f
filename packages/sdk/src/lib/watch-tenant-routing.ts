// The routing watch as an application follows it (WatchTenantRouting): the
// tenant's routing now, then every change, for as long as it reads — across
// dropped connections, server restarts and node changes, which the
// ResumableStream reconnects after the §6.3 backoff. Each connection starts
// with the routing as it is then, which the application may have already:
// a message whose version is not greater than the last one handed over is
// dropped, so the application never sees a version twice, nor an older one
// after a newer. A change made while disconnected arrives as that first
// message (the versions in between, if several, are not replayed: the
// routing is a state, and its latest version is the one that counts).
import { RoutingService, type TenantRouting } from "@heliosdb/replication-proto";
import type { HeliosDBReplicationClient } from "../client";
import { ResumableStream, type StreamOptions } from "../core/streams";
import { messageFrom } from "../internal/params";
import type { Transport } from "../internal/transport";

export interface WatchOptions {
  /** Ends the watch, as `abort()` does. */
  signal?: AbortSignal | undefined;
}

/** `client.routing.watch(tenantId)`: the tenant's routing now, then every change. */
export function watchTenantRouting(client: Pick<HeliosDBReplicationClient, "routing">, tenantId: string, options?: WatchOptions): ResumableStream<TenantRouting> {
  return client.routing.watch(tenantId, options);
}

/** The stream behind both, over a client's transport (client.routing calls it). */
export function routingWatch(transport: Transport, tenantId: string, streams: StreamOptions, options: WatchOptions = {}): ResumableStream<TenantRouting> {
  const method = RoutingService.method.watchTenantRouting;
  const request = messageFrom(method.input, { tenantId });
  let last: bigint | undefined;
  const stream = new ResumableStream<TenantRouting>(
    async function* (signal) {
      for await (const { routing } of transport.stream(method, request, signal)) {
        if (routing && (last === undefined || routing.version > last)) yield routing;
      }
    },
    streams,
    (routing) => void (last = routing.version),
  );
  const { signal } = options;
  if (signal?.aborted) stream.abort();
  else signal?.addEventListener("abort", () => stream.abort(), { once: true });
  return stream;
}
