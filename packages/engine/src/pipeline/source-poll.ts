// The source's WAL position and each slot's retained WAL, read once a beat
// on one session per source cluster for every replication watching it
// (watch.ts). Both are figures of the cluster, not of a database: with a
// hundred tenants' databases on one cluster, a query a second per
// replication was most of the source's work at rest (docs/engine.md,
// "What a replication costs"). Replications share a poll only when they
// reach the cluster as the same user, with the same credentials and
// settings: nothing one tenant's configuration could not read itself.
//
// The session runs in the database of one of its watchers; when that
// watcher leaves, the session closes and the next beat opens it in the
// database of one still there, so that no session lingers in a database
// whose replication is gone (it would block DROP DATABASE).
import { createHash } from "node:crypto";
import pg from "pg";
import { parse as parseConnectionString } from "pg-connection-string";
import { connect } from "../connect";
import { parseLsn, type Lsn } from "../types";

export interface SourceSample {
  /** pg_current_wal_lsn(). */
  current: Lsn;
  /** WAL the slot holds back (0 while the slot does not exist). */
  retainedBytes: number;
}

interface Watcher {
  slot: string;
  config: pg.ClientConfig;
  onSample: (sample: SourceSample) => void;
}

// Each question of a poll is bounded, so a stuck one cannot starve every watcher of the cluster.
const STATEMENT_TIMEOUT_MS = 10_000;

class SourcePoll {
  private readonly watchers = new Set<Watcher>();
  private client: pg.Client | undefined;
  private clientOf: Watcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private again = false;

  constructor(
    private readonly intervalMs: number,
    private readonly onEmpty: () => void,
  ) {}

  add(watcher: Watcher): void {
    this.watchers.add(watcher);
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(false), this.intervalMs);
      this.timer.unref?.();
    }
    // A new watcher hears at once (or right after the poll in flight), not a beat later.
    this.tick(true);
  }

  remove(watcher: Watcher): void {
    if (!this.watchers.delete(watcher)) return;
    if (watcher === this.clientOf) this.close();
    if (this.watchers.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.close();
    this.onEmpty();
  }

  // A beat while a poll is in flight (a source slow to answer, or away and
  // timing out) is skipped, so a failing source is tried once a beat, not
  // back to back; only a new watcher's poll waits its turn.
  private tick(newWatcher: boolean): void {
    if (this.polling) {
      this.again ||= newWatcher;
      return;
    }
    this.polling = true;
    void this.poll().finally(() => {
      this.polling = false;
      if (this.again && this.watchers.size > 0) {
        this.again = false;
        this.tick(true);
      }
    });
  }

  private async poll(): Promise<void> {
    const watchers = [...this.watchers];
    if (watchers.length === 0) return;
    try {
      if (!this.client) {
        const owner = watchers[0]!;
        const client = await connect({
          ...owner.config,
          connectionTimeoutMillis: owner.config.connectionTimeoutMillis ?? 5_000,
          statement_timeout: STATEMENT_TIMEOUT_MS,
        });
        // Its watcher left while it connected.
        if (!this.watchers.has(owner)) {
          await client.end().catch(() => undefined);
          return;
        }
        this.client = client;
        this.clientOf = owner;
      }
      const { rows } = await this.client.query<{ current: string; retained: Record<string, string | null> | null }>(
        `SELECT pg_current_wal_lsn()::text AS current,
                (SELECT json_object_agg(slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text)
                   FROM pg_replication_slots WHERE slot_name = ANY($1)) AS retained`,
        [[...new Set(watchers.map((w) => w.slot))]],
      );
      const current = parseLsn(rows[0]!.current);
      const retained = rows[0]!.retained ?? {};
      for (const watcher of watchers) {
        // One that left during the query hears nothing more.
        if (!this.watchers.has(watcher)) continue;
        try {
          watcher.onSample({ current, retainedBytes: Number(retained[watcher.slot] ?? 0) });
        } catch {
          // One watcher's failure is its own: the others still hear, and the session stays.
        }
      }
    } catch {
      // A missed beat shows as stale figures in every watcher; the session is opened again at the next one.
      this.close();
    }
  }

  private close(): void {
    void this.client?.end().catch(() => undefined);
    this.client = undefined;
    this.clientOf = undefined;
  }
}

const polls = new Map<string, SourcePoll>();

/**
 * Calls `onSample` once a beat (and once soon after this call) with the WAL
 * position of the cluster `config` reaches and what `slot` retains, until
 * the returned function is called. A beat whose query fails calls nothing.
 */
export function pollSource(config: pg.ClientConfig, slot: string, intervalMs: number, onSample: (sample: SourceSample) => void): () => void {
  const key = `${intervalMs}\0${clusterKey(config)}`;
  let poll = polls.get(key);
  if (!poll) {
    const created = new SourcePoll(intervalMs, () => {
      if (polls.get(key) === created) polls.delete(key);
    });
    polls.set(key, created);
    poll = created;
  }
  const watcher: Watcher = { slot, config, onSample };
  poll.add(watcher);
  return () => poll.remove(watcher);
}

/** Source polls running in this process (for tests). */
export function sourcePollCount(): number {
  return polls.size;
}

// Everything that decides where a session lands and as whom, but its
// database: the fields, with a connection string's over them (as pg reads
// them), and the identity of any function or object but a plain one (a
// socket factory, a password callback), which cannot be compared by value.
const identities = new WeakMap<object, number>();
let nextIdentity = 0;
function clusterKey(config: pg.ClientConfig): string {
  const { connectionString, ...fields } = config;
  const resolved: Record<string, unknown> = { ...fields, ...(connectionString ? parseConnectionString(connectionString) : {}) };
  delete resolved.database;
  if (resolved.port !== undefined) resolved.port = Number(resolved.port);
  const text = JSON.stringify(resolved, (_key, value: unknown) => {
    if (typeof value !== "function" && (typeof value !== "object" || value === null || Array.isArray(value))) return value;
    const prototype = typeof value === "object" ? Object.getPrototypeOf(value) : undefined;
    if (prototype === Object.prototype || prototype === null) return value;
    let id = identities.get(value as object);
    if (id === undefined) identities.set(value as object, (id = nextIdentity++));
    return `#${id}`;
  });
  // A digest, so the map keeps no second copy of a password.
  return createHash("sha256").update(text).digest("hex");
}
