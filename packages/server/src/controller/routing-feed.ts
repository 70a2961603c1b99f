// The routing feed: a tenant's routing now, then every change — the one
// implementation behind WatchTenantRouting.
//
// Failover and migration change a routing row on whichever server runs them;
// at each commit a trigger (migration 11) announces the row as the
// transaction left it, and one LISTEN session per server (store/notices.ts)
// hears the announcements in commit order. For each tenant someone watches,
// the feed keeps what it heard (the tenant's log), and each watcher of that
// tenant takes from it what is newer than what it sent: no read per change,
// none per watcher, and every version rather than only the last.
//
// A watcher sends a version once, in increasing order: whatever is not newer
// than the last it sent is skipped (an announcement still on its way when
// the watcher's first read already saw the change; a read that overlapped an
// announcement). An announcement lost while the session was down is not a
// change lost: the session says "*" when it goes down and when it is back,
// and each watched tenant is read then (and every second while it is down);
// a read gives the latest version, not the ones in between that no one heard.
import type { RoutingNotice, RoutingRow } from "../store/routing";
import { Rerun } from "./rerun";
import { noRouting } from "./routing";
import { Subscriber, SubscriberSet } from "./subscription";

/** The LISTEN session's face the feed needs (store/notices.ts). */
export interface RoutingNotices {
  readonly listening: boolean;
  on(handler: (payload: string) => void): void;
}

export interface RoutingFeedDeps {
  /** The tenant's routing as the control plane has it now; undefined when none is recorded. */
  read: (tenantId: string) => Promise<RoutingRow | undefined>;
  /** A notification's payload as one tenant's change; undefined when any tenant's may have changed. */
  notice: (payload: string) => RoutingNotice | undefined;
  notices: RoutingNotices;
  /** How often a watched tenant is read without a notification: while the session listens, and while it does not (ms). */
  pollMs?: { listening: number; deaf: number };
}

// One change heard: a row, or its deletion (null). `readAt`: the feed's clock when the read that found it began
// (unset for an announcement), to tell a deletion a watcher's first read may have come after.
interface Entry {
  seq: number;
  row: RoutingRow | null;
  readAt?: number;
}

interface Tenant {
  watchers: number;
  /** Oldest first; seqs consecutive, up to `next` (excluded). */
  log: Entry[];
  next: number;
  /** The tenant's reads of its row: one at a time. */
  reading: Rerun;
  /** Date.now() when the last read began. */
  readMs: number;
}

/** Entries a tenant keeps: a watcher further behind skips to newer ones (and still never goes back). */
const LOG_MAX = 1000;

export class RoutingFeed {
  private readonly subscribers = new SubscriberSet<string>();
  private readonly tenants = new Map<string, Tenant>();
  private readonly pollMs: { listening: number; deaf: number };
  // Orders reads against watchers' first reads: a read that began after one ended saw all it saw.
  private clock = 0;

  constructor(private readonly deps: RoutingFeedDeps) {
    this.pollMs = deps.pollMs ?? { listening: 30_000, deaf: 1_000 };
    deps.notices.on((payload) => this.heard(payload));
  }

  /** Subscriptions open on this server. */
  get open(): number {
    return this.subscribers.size;
  }

  /**
   * The tenant's routing now (NOT_FOUND when none is recorded, as GET), then
   * each change until `signal` aborts, or NOT_FOUND once the routing is
   * deleted. The caller's scope is checked before (controller/routing.ts).
   */
  async subscribe(tenantId: string, signal: AbortSignal): Promise<AsyncIterable<RoutingRow>> {
    // Heard from before the first read: a change committed after its snapshot may be announced while it runs.
    const tenant = this.tenants.get(tenantId) ?? this.add(tenantId);
    tenant.watchers++;
    const from = tenant.next;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--tenant.watchers === 0 && this.tenants.get(tenantId) === tenant) this.tenants.delete(tenantId);
    };
    try {
      const first = await this.deps.read(tenantId);
      if (!first) throw noRouting(tenantId);
      const since = ++this.clock;
      // The stream releases it when it ends; this, when it is never read.
      signal.addEventListener("abort", release, { once: true });
      return this.stream(new Subscriber(signal), tenantId, tenant, { first, from, since }, release);
    } catch (e) {
      release();
      throw e;
    }
  }

  // Counted from its first read to its end.
  private async *stream(
    subscriber: Subscriber,
    tenantId: string,
    tenant: Tenant,
    start: { first: RoutingRow; from: number; since: number },
    release: () => void,
  ): AsyncGenerator<RoutingRow> {
    this.subscribers.add(subscriber, tenantId);
    try {
      let last = start.first.version;
      let position = start.from;
      yield start.first;
      while (!subscriber.signal.aborted) {
        subscriber.dirty = false;
        for (let e = entryAt(tenant, position); e; e = entryAt(tenant, position)) {
          position = e.seq + 1;
          if (e.row === null) {
            // A read that began before the first read ended may have missed the row that read found.
            if (e.readAt === undefined || e.readAt > start.since) throw noRouting(tenantId);
          } else if (e.row.version > last) {
            last = e.row.version;
            yield e.row;
            if (subscriber.signal.aborted) return;
          }
        }
        const ms = this.deps.notices.listening ? this.pollMs.listening : this.pollMs.deaf;
        await subscriber.sleep(ms);
        // No announcement for a while (or the session is down): read the row, once for all its watchers.
        if (!subscriber.dirty && !subscriber.signal.aborted && Date.now() - tenant.readMs >= ms) void this.refresh(tenantId, tenant);
      }
    } finally {
      this.subscribers.delete(subscriber);
      release();
    }
  }

  private add(tenantId: string): Tenant {
    const tenant: Tenant = { watchers: 0, log: [], next: 0, reading: new Rerun(), readMs: Date.now() };
    this.tenants.set(tenantId, tenant);
    return tenant;
  }

  private heard(payload: string): void {
    if (this.tenants.size === 0) return;
    const notice = this.deps.notice(payload);
    if (!notice) {
      for (const [id, tenant] of this.tenants) void this.refresh(id, tenant);
      return;
    }
    const tenant = this.tenants.get(notice.tenantId);
    if (!tenant) return;
    // Too large to announce: read it.
    if (notice.row === undefined) return void this.refresh(notice.tenantId, tenant);
    this.append(notice.tenantId, tenant, { row: notice.row });
  }

  /** Reads the tenant's row (a call while a read runs makes it read once more when done) and logs what it found. */
  private refresh(tenantId: string, tenant: Tenant): Promise<void> {
    // When the control plane does not answer, the watchers' next poll reads again.
    return tenant.reading.run(async () => {
      const readAt = ++this.clock;
      tenant.readMs = Date.now();
      const row = await this.deps.read(tenantId);
      this.append(tenantId, tenant, { row: row ?? null, readAt });
    });
  }

  private append(tenantId: string, tenant: Tenant, entry: Omit<Entry, "seq">): void {
    const latest = tenant.log.at(-1)?.row;
    // A read that found what was last heard tells no one anything.
    if (entry.readAt !== undefined && entry.row && latest && entry.row.version === latest.version) return;
    tenant.log.push({ ...entry, seq: tenant.next++ });
    if (tenant.log.length > LOG_MAX) tenant.log.shift();
    this.subscribers.wake((key) => key === tenantId);
  }
}

// The first entry at or after `position` (the oldest kept, when it was dropped).
function entryAt(tenant: Tenant, position: number): Entry | undefined {
  const first = tenant.log[0];
  if (!first) return undefined;
  return tenant.log[Math.max(0, position - first.seq)];
}
