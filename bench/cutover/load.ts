// The tenant's clients for the cutover benchmark: a steady rate of small
// writes from several connections, each sent to whatever primary routing
// names. A write refused with 25006 (the cutover's fence: "not the primary")
// re-reads routing until a newer version names a primary that takes writes,
// and is sent there; a deadlock with the fence's locks (40P01) is sent again.
// Every acknowledged write is remembered — when its COMMIT returned, and
// what it wrote — so the run can say how long no write was acknowledged
// around each cutover and whether any acknowledged write is missing on the
// final primary.
//
// Writes are single statements (autocommit): three in four insert an order
// whose status names the write; one in four renames a user of the
// connection's own (ids ≡ connection mod connections), so the final name of
// each is known exactly.
import { performance } from "node:perf_hooks";
import type pg from "pg";

export interface Route {
  version: bigint;
  /** "connection_id/database", or any key `connect` understands. */
  primary: string;
  writesBlocked: boolean;
  /** The primary a cutover being prepared will switch to (routing's next_primary), when one is announced. */
  next?: string;
}

export interface LoadOptions {
  /** Writes per second, all connections together. */
  rate: number;
  connections: number;
  /** A mark in what this load writes (order statuses, user names start with it). */
  tag: string;
  /** Users ids 1..users exist; each connection renames its own. */
  users: number;
  routing: () => Promise<Route>;
  /** Resolves when routing moved past `version` (default: 2 ms later, to read it again). */
  changed?: (version: bigint) => Promise<void>;
  connect: (primary: string) => Promise<pg.Client>;
  /** Told of each connection taken after a refusal: when, how long it took (performance.now(), ms), and whether it was opened ahead. */
  onReconnect?: (primary: string, at: number, ms: number, ahead: boolean) => void;
}

export interface Load {
  /** When each write was acknowledged (performance.now()), in the order they were. */
  readonly ackTimes: number[];
  /** Refusals with 25006 met, deadlocks retried, other errors (each a failure of the run). */
  readonly refusals: () => number;
  readonly deadlocks: () => number;
  readonly errors: string[];
  /** Holds every connection before its next write (a script "stopping the application"); resolves when none is in flight. */
  pause(): Promise<void>;
  /** Lets them go; each reads routing first and reconnects when it names another primary. */
  resume(): void;
  /** The order statuses acknowledged, and the last acknowledged name of each renamed user. */
  expected(): { orders: Set<string>; names: Map<string, string> };
  stop(): Promise<void>;
}

const INSERT = "INSERT INTO orders (user_id, amount, status) VALUES ($1, 1.5, $2)";
const RENAME = "UPDATE users SET name = $2 WHERE id = $1";

// A connection opened ahead is warmed as well: a new backend's first write loads the catalog entries of the table,
// its indexes and its sequence (10-20 ms on this host), which EXPLAIN (planning only, nothing written) does now.
async function warm(client: pg.Client): Promise<pg.Client> {
  for (const statement of [INSERT, RENAME]) await client.query(`EXPLAIN ${statement}`, ["1", "warm"]).catch(() => undefined);
  return client;
}

export function startLoad(o: LoadOptions): Load {
  const ackTimes: number[] = [];
  const errors: string[] = [];
  // What was acknowledged, kept as small integers (a write's index per connection; a user's last rename):
  // millions of strings would make the clients' own garbage collections pause them for hundreds of ms,
  // silences the benchmark would count as the cutover's. The strings are made once, by expected().
  const inserted: number[][] = Array.from({ length: o.connections }, () => []);
  const lastRename = new Int32Array(o.users + o.connections + 1).fill(-1);
  let refused = 0;
  let deadlocks = 0;
  let running = true;
  let gate: { opened: Promise<void>; open: () => void } | undefined;
  /** How many times pause() stopped the writers. */
  let stops = 0;
  const inFlight = new Set<number>();
  let idle: (() => void) | undefined;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const interval = (1000 * o.connections) / o.rate;

  const connection = async (c: number) => {
    let route = await o.routing();
    let db = await o.connect(route.primary);
    // A connection opened ahead to the primary routing announces as next, taken at the switch.
    let spare: { primary: string; client: Promise<pg.Client> } | undefined;
    const drop = (client: Promise<pg.Client> | pg.Client) => void Promise.resolve(client).then((c) => c.end()).catch(() => undefined);
    let stopsSeen = stops;
    const start = performance.now();
    for (let i = 0; running; i++) {
      // Paced: the i-th write of this connection is due at start + i·interval (late ones go at once).
      const wait = start + i * interval - performance.now();
      if (wait > 1) await sleep(wait);
      if (gate) await gate.opened;
      if (stops !== stopsSeen) {
        // Stopped by the operator (waiting at the gate, or asleep through the whole stop): write where routing
        // says now, as an application restarted on its new configuration connects afresh.
        stopsSeen = stops;
        const now = await o.routing();
        if (now.primary !== route.primary) {
          await db.end().catch(() => undefined);
          route = now;
          db = await o.connect(route.primary);
        }
      }
      if (!running) break;
      const heard = await o.routing();
      if (heard.next && heard.next !== route.primary && spare?.primary !== heard.next) {
        if (spare) drop(spare.client);
        const client = o.connect(heard.next).then(warm);
        client.catch(() => undefined);
        spare = { primary: heard.next, client };
      }
      const insert = i % 4 !== 3;
      const mark = `${o.tag}${c}-${i}`;
      const user = String(1 + c + o.connections * (i % Math.max(1, Math.floor(o.users / o.connections) - 1)));
      inFlight.add(c);
      for (;;) {
        try {
          if (insert) await db.query(INSERT, [user, mark]);
          else await db.query(RENAME, [user, mark]);
          ackTimes.push(performance.now());
          if (insert) inserted[c]!.push(i);
          else lastRename[Number(user)] = i;
          break;
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === "40P01") {
            deadlocks++;
            continue;
          }
          if (code !== "25006") {
            errors.push(`connection ${c} on ${route.primary}: ${(e as Error).message} (${code ?? "no code"})`);
            if (errors.length > 100) running = false;
            break;
          }
          refused++;
          // Not the primary: follow routing to the one that takes writes now (while writes are blocked, wait for
          // it); routing unchanged and not blocked (the switch is not recorded yet, or a cutover rolled back and
          // lifted its fence), try the same one again in a moment.
          const was = route;
          const changed = o.changed ?? (() => sleep(2));
          for (;;) {
            route = await o.routing();
            if (!route.writesBlocked) break;
            await changed(route.version);
          }
          if (route.primary === was.primary) {
            // The fence may be seen before the routing that blocks writes: wait for a change, a while at most.
            await Promise.race([changed(route.version), sleep(20)]);
            continue;
          }
          // The old connection is closed without waiting for it: the next write need not wait for that.
          drop(db);
          const at = performance.now();
          const ahead = spare?.primary === route.primary ? spare.client : undefined;
          spare = undefined;
          db = await (ahead ? ahead.catch(() => o.connect(route.primary)) : o.connect(route.primary));
          o.onReconnect?.(route.primary, at, performance.now() - at, ahead !== undefined);
        }
      }
      inFlight.delete(c);
      if (idle && inFlight.size === 0) idle();
    }
    if (spare) drop(spare.client);
    await db.end().catch(() => undefined);
  };
  const loops = Array.from({ length: o.connections }, (_, c) =>
    connection(c).catch((e: unknown) => {
      errors.push(`connection ${c}: ${(e as Error).message}`);
    }),
  );

  return {
    ackTimes,
    errors,
    refusals: () => refused,
    deadlocks: () => deadlocks,
    async pause() {
      let open!: () => void;
      gate = { opened: new Promise<void>((r) => (open = r)), open: () => open() };
      stops++;
      if (inFlight.size > 0) await new Promise<void>((r) => (idle = r));
      idle = undefined;
    },
    resume() {
      gate?.open();
      gate = undefined;
    },
    expected() {
      const orders = new Set<string>();
      inserted.forEach((writes, c) => writes.forEach((i) => orders.add(`${o.tag}${c}-${i}`)));
      const names = new Map<string, string>();
      lastRename.forEach((i, user) => {
        if (i >= 0) names.set(String(user), `${o.tag}${(user - 1) % o.connections}-${i}`);
      });
      return { orders, names };
    },
    async stop() {
      running = false;
      this.resume();
      await Promise.all(loops);
    },
  };
}

/**
 * The longest time in [from, to] in which no write was acknowledged: the
 * largest gap between consecutive acknowledgements, counting the last one
 * before `from` and the first one after `to` as its bounds.
 */
export function longestSilence(ackTimes: readonly number[], from: number, to: number): number {
  return silenceIn(ackTimes, from, to).ms;
}

/** longestSilence, and where it was: the acknowledgements that bound it. */
export function silenceIn(ackTimes: readonly number[], from: number, to: number): { ms: number; after: number; until: number } {
  let i = lowerBound(ackTimes, from);
  let previous = i > 0 ? ackTimes[i - 1]! : from;
  let longest = { ms: 0, after: previous, until: previous };
  for (; i < ackTimes.length; i++) {
    const t = ackTimes[i]!;
    if (t - previous > longest.ms) longest = { ms: t - previous, after: previous, until: t };
    previous = t;
    if (t > to) break;
  }
  return longest;
}

function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
