// The tenant's clients in a process of their own (bench:cutover forks
// .build/clients.mjs): the load of load.ts, following routing through one
// WatchTenantRouting watch (routing-view.ts), as applications beside the
// service would. In the server's process their acknowledgements would wait
// for whatever the server's event loop runs (the verification's checksums,
// the copy's encoding) and count as downtime that no client of a real
// deployment sees.
//
// Messages: the parent sends the options, then "sync" (answered once every
// acknowledgement so far was sent) and "stop" (answered with what the load
// wrote); the child sends acknowledgement times in batches, as epoch
// milliseconds (performance.timeOrigin + now), which both processes share.
import { performance, PerformanceObserver } from "node:perf_hooks";
import pg from "pg";
import { startLoad } from "./load";
import { watchRouting } from "./routing-view";

export interface ClientsOptions {
  rate: number;
  connections: number;
  tag: string;
  users: number;
  baseUrl: string;
  token: string;
  tenantId: string;
  /** Each connection id's URL without a database (the database is appended). */
  servers: Record<string, string>;
}

export type ToClients = { type: "start"; options: ClientsOptions } | { type: "sync"; id: number } | { type: "stop" };
export type FromClients =
  | { type: "acks"; at: number[] }
  /** Times the clients' event loop stood still (a garbage collection, or anything else that held it), [start, ms]. */
  | { type: "stalls"; at: [number, number, "gc" | "held"][] }
  /** What the clients did around a switch: a routing heard, a connection made to follow it ([epoch ms, text]). */
  | { type: "marks"; at: [number, string][] }
  | { type: "synced"; id: number }
  | { type: "orders"; orders: string[] }
  | { type: "stopped"; names: [string, string][]; refusals: number; deadlocks: number; errors: string[] };

const send = (m: FromClients) => new Promise<void>((resolve, reject) => process.send!(m, (e: Error | null) => (e ? reject(e) : resolve())));

process.on("message", (m: ToClients) => {
  if (m.type === "start") void run(m.options);
});

async function run(o: ClientsOptions): Promise<void> {
  const view = await watchRouting({ baseUrl: o.baseUrl, token: o.token, tenantId: o.tenantId });
  const marks: [number, string][] = [];
  view.onHeard = (r, at) => void marks.push([performance.timeOrigin + at, `heard v${r.version}${r.writesBlocked ? " (writes blocked)" : r.next ? " (next announced)" : ""}`]);
  const load = startLoad({
    rate: o.rate,
    connections: o.connections,
    tag: o.tag,
    users: o.users,
    routing: view.current,
    changed: view.changed,
    onReconnect: (_primary, at, ms, ahead) => void marks.push([performance.timeOrigin + at, `${ahead ? "took the connection opened ahead" : "connected"} in ${ms.toFixed(0)} ms`]),
    connect: async (primary) => {
      const [connectionId, database] = primary.split("/") as [string, string];
      const client = new pg.Client({ connectionString: `${o.servers[connectionId]}${encodeURIComponent(database)}` });
      client.on("error", () => undefined);
      await client.connect();
      return client;
    },
  });
  // Where the clients themselves stood still: a silence then is theirs, not the service's. A timer that fires
  // late by more than 20 ms saw its loop held — by a garbage collection (which the observer names too), by other
  // work of theirs, or by a CPU the rest of the host kept busy.
  const stalls: [number, number, "gc" | "held"][] = [];
  let tick = performance.now();
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (now - tick > 25) stalls.push([performance.timeOrigin + tick + 5, now - tick - 5, "held"]);
    tick = now;
  }, 5);
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.duration >= 10) stalls.push([performance.timeOrigin + e.startTime, e.duration, "gc"]);
  });
  gcs.observe({ entryTypes: ["gc"] });
  let sent = 0;
  const flush = async () => {
    const at = load.ackTimes.slice(sent).map((t) => performance.timeOrigin + t);
    sent += at.length;
    if (at.length) await send({ type: "acks", at });
    if (stalls.length) await send({ type: "stalls", at: stalls.splice(0) });
    if (marks.length) await send({ type: "marks", at: marks.splice(0) });
  };
  const timer = setInterval(() => void flush(), 50);
  // The benchmark gone (killed, or failed without stopping us): nothing would ever stop these writers.
  process.on("disconnect", () => process.exit(1));
  process.on("message", async (m: ToClients) => {
    if (m.type === "sync") {
      await flush();
      await send({ type: "synced", id: m.id });
    } else if (m.type === "stop") {
      clearInterval(timer);
      clearInterval(watchdog);
      gcs.disconnect();
      await load.stop();
      view.close();
      await flush();
      const { orders, names } = load.expected();
      const all = [...orders];
      for (let i = 0; i < all.length; i += 100_000) await send({ type: "orders", orders: all.slice(i, i + 100_000) });
      await send({ type: "stopped", names: [...names], refusals: load.refusals(), deadlocks: load.deadlocks(), errors: load.errors });
      // Done: the watch's HTTP session would keep the process alive.
      process.exit(0);
    }
  });
}
