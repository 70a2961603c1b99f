// The tenant's routing as the bench's clients follow it: one watch per
// process (WatchTenantRouting through @heliosdb/replication-sdk, as an
// application follows it), read by every connection of the load. A client
// that polled GetTenantRouting every few ms while writes are blocked would
// spend the server's CPU (on this 2-core host, the cutover's own) and hear
// the switch up to a poll late: neither is the cutover's downtime.
import { HeliosDBReplicationClient } from "../../packages/sdk/src/index.node";
import { performance } from "node:perf_hooks";
import type { Route } from "./load";

export interface RoutingView {
  /** The routing as last heard. */
  current(): Promise<Route>;
  /** Resolves at the next change heard (or at once, if one came since `version`). */
  changed(version: bigint): Promise<void>;
  /** Called with each routing heard, when it was heard (performance.now()). */
  onHeard?: (route: Route, at: number) => void;
  close(): void;
}

export async function watchRouting(o: { baseUrl: string; token: string; tenantId: string }): Promise<RoutingView> {
  const client = new HeliosDBReplicationClient({ baseUrl: o.baseUrl, token: o.token });
  const stream = client.routing.watch(o.tenantId);
  let route: Route | undefined;
  let view: RoutingView | undefined;
  let waiters: (() => void)[] = [];
  let first!: () => void;
  const ready = new Promise<void>((r) => (first = r));
  void (async () => {
    for await (const r of stream) {
      route = {
        version: r.version,
        primary: `${r.primary?.connectionId}/${r.primary?.database}`,
        writesBlocked: r.writesBlocked,
        ...(r.nextPrimary ? { next: `${r.nextPrimary.connectionId}/${r.nextPrimary.database}` } : {}),
      };
      view?.onHeard?.(route, performance.now());
      first();
      const woken = waiters;
      waiters = [];
      for (const w of woken) w();
    }
  })().catch((e: unknown) => {
    process.stderr.write(`routing watch ended: ${(e as Error).message}\n`);
  });
  await ready;
  view = {
    current: async () => route!,
    changed: (version) => (route!.version > version ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
    close: () => stream.abort(),
  };
  return view;
}
