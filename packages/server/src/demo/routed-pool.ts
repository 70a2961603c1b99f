// A tenant's client that follows its routing, as the demo's writer is one:
// it writes to whatever primary the tenant's routing names (the `routing`
// table, which failover and migration switch). A write refused with
// SQLSTATE 25006 — the cutover fence: "not the primary, follow routing" — is
// rolled back; routing is read again until a newer version names a primary
// that takes writes (while writes_blocked, it waits), and the transaction
// runs again there. A transaction is acknowledged only once its COMMIT
// returned, so nothing acknowledged is written twice or lost: what the fence
// refused never committed, and what committed before it the failover
// drained to the new primary.
//
// Any other failure (the primary gone: a crash, and an automatic failover
// perhaps under way) is the caller's to report; the next transaction reads
// routing again first, so it follows a switch made meanwhile.
import { FENCE_SQLSTATE } from "@heliosdb/replication-engine";
import type { ConnectionInfo } from "@heliosdb/replication-proto";
import pg from "pg";

/** The tenant's routing as the client reads it. */
export interface Route {
  version: bigint;
  primary: ConnectionInfo;
  writesBlocked: boolean;
}

export interface RoutedPoolOptions {
  tenantId: string;
  /** The tenant's routing now (RoutingStore.get); undefined when it has none. */
  routing: () => Promise<Route | undefined>;
  /** How to reach a primary routing names (ConnectionStore.clientConfig of its connection and database). */
  resolve: (primary: ConnectionInfo) => Promise<pg.ClientConfig | undefined>;
  log: (line: string) => void;
  /** How often routing is read again while the primary refuses writes (default 250 ms). */
  pollMs?: number;
}

/** What a committed transaction returned, and the primary it committed on ("connection_id/database"). */
export interface Acknowledged<T> {
  result: T;
  primary: string;
}

export class RoutedPool {
  private pool?: pg.Pool;
  private route?: Route;
  // Read routing again before the next transaction (after a failure: the primary may have moved).
  private stale = true;
  private closed = false;

  constructor(private readonly options: RoutedPoolOptions) {}

  /** Where writes go now ("connection_id/database"), once routing has been read. */
  get primary(): string | undefined {
    return this.route && where(this.route.primary);
  }

  /** Runs `fn` in one transaction on the tenant's primary, following routing on a fence's refusal (see above). */
  async transaction<T>(fn: (client: pg.ClientBase) => Promise<T>): Promise<Acknowledged<T>> {
    let refused = false;
    for (;;) {
      const pool = await this.current();
      const primary = this.primary!;
      const client = await pool.connect().catch((e: unknown) => {
        this.stale = true;
        throw e;
      });
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        return { result, primary };
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        if ((e as { code?: string }).code !== FENCE_SQLSTATE) {
          // Not a refusal: the session may be gone with its server; it is not reused.
          broken = e as Error;
          this.stale = true;
          throw e;
        }
        // Said once per transaction, whether routing has already moved on (the switch came before this write) or not
        // yet; a version that moves on without a switch (a next primary announced) sends it to the same primary again.
        if (!refused) this.options.log(`demo writer: ${this.options.tenantId}'s primary ${primary} refuses writes (${FENCE_SQLSTATE}): following its routing to the primary it names`);
        refused = true;
        await this.follow();
      } finally {
        client.release(broken ?? false);
      }
    }
  }

  async end(): Promise<void> {
    this.closed = true;
    await this.pool?.end().catch(() => undefined);
    this.pool = undefined;
  }

  // The pool of the primary routing names, routing read again when it may have changed.
  private async current(): Promise<pg.Pool> {
    if (this.closed) throw new Error("the writer is stopped");
    if (this.stale || !this.pool) {
      const route = await this.options.routing();
      if (!route) throw new Error(`tenant ${this.options.tenantId} has no routing`);
      await this.use(route);
      this.stale = false;
    }
    return this.pool!;
  }

  // The primary refused writes: wait for routing to move past what it said (a switch, or a rollback that lifted the fence).
  private async follow(): Promise<void> {
    const was = this.route!;
    for (;;) {
      if (this.closed) throw new Error("the writer is stopped");
      const route = await this.options.routing();
      if (route && route.version > was.version && !route.writesBlocked) return this.use(route);
      await new Promise((r) => setTimeout(r, this.options.pollMs ?? 250));
    }
  }

  private async use(route: Route): Promise<void> {
    const before = this.route;
    this.route = route;
    if (this.pool && before && where(before.primary) === where(route.primary)) return;
    const config = await this.options.resolve(route.primary);
    if (!config) throw new Error(`tenant ${this.options.tenantId}'s routing names connection ${route.primary.connectionId}, which does not exist`);
    const old = this.pool;
    this.pool = writerPool(config);
    void old?.end().catch(() => undefined);
    if (before) {
      const region = route.primary.region ? `${route.primary.region}, ` : "";
      this.options.log(`demo writer: ${this.options.tenantId} follows its routing to the new primary ${where(route.primary)} (${region}routing version ${route.version})`);
    }
  }
}

/** One session to a database; a session its server ends (idle or in use) is replaced, and what was running on it fails. */
export function writerPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool({ ...config, max: 1, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000 });
  // The query in progress rejects with the error; unheard, the session's own 'error' would end the process.
  pool.on("error", () => undefined);
  pool.on("connect", (client) => client.on("error", () => undefined));
  return pool;
}

const where = (p: ConnectionInfo) => `${p.connectionId}/${p.database}`;
