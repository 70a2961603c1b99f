// The token buckets of spec §7 in the control plane (migration 7), so that
// every server sharing it counts against the same buckets: a client spread
// over several servers gets exactly its burst and rate, not one per server.
//
// A decision is one atomic upsert: the bucket refills by the time elapsed
// on the database's clock (every server's clock, then), up to its burst, and
// gives out the whole tokens it has to the requests asking — never more,
// never by going below zero. So that a request does not pay a round trip of
// its own, the requests that arrive in one turn of the event loop (and while
// a statement is in flight) are decided by one statement: under load one
// round trip decides many requests, as the replication cache's LISTEN
// barrier does. The statement runs on that LISTEN session while it is up
// (else on the pool): its round trip, sent after the requests it decides
// arrived, is then also the barrier their reads from the cache wait for.
import type pg from "pg";
import type { Notices } from "./notices";

/** A bucket: `perMinute` tokens refilled per minute, at most `burst` held. */
export interface Bucket {
  perMinute: number;
  burst: number;
}

/** What the bucket said to one request. */
export interface Decision {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until the bucket holds a token again (0 while it holds one). */
  retryAfterSeconds: number;
  /** Unix seconds when the bucket is full again. */
  resetAt: number;
}

interface Row {
  key: string;
  tokens: number;
  granted: number;
  at: number;
}

interface Pending {
  key: string;
  bucket: Bucket;
  resolve: (d: Decision) => void;
  reject: (e: unknown) => void;
}

// Rows of buckets full again are deleted at most this often (a deleted bucket is a full one).
const SWEEP_EVERY_MS = 60_000;

// Sorted keys: two servers' statements lock the rows they share in the same order (no deadlock).
const DECIDE = `
  INSERT INTO rate_limits AS b (key, tokens, updated_at, rate, burst, granted)
  SELECT key, burst - least(n, floor(burst)), now(), rate, burst, least(n, floor(burst))
    FROM jsonb_to_recordset($1::jsonb) AS r(key text, rate float8, burst float8, n int)
   ORDER BY key
  ON CONFLICT (key) DO UPDATE SET
    tokens = ${avail()} - least(excluded.granted, floor(${avail()})),
    granted = least(excluded.granted, floor(${avail()})),
    updated_at = excluded.updated_at, rate = excluded.rate, burst = excluded.burst
  RETURNING key, tokens, granted, extract(epoch FROM updated_at)::float8 AS at`;

// The tokens a stored bucket holds now: refilled for the time since its last decision, up to its burst.
function avail(): string {
  return "least(excluded.burst, b.tokens + greatest(0, extract(epoch FROM excluded.updated_at - b.updated_at)) * excluded.rate)";
}

export class RateLimitStore {
  private waiting: Pending[] = [];
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private lastSweep = Date.now();

  constructor(
    private readonly db: pg.Pool,
    private readonly session?: Notices,
  ) {}

  /** Takes a token from the bucket `key` (made full on first use) if it holds one. */
  take(key: string, bucket: Bucket): Promise<Decision> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ key, bucket, resolve, reject });
      // One statement at a time: those that arrive meanwhile, and in the turn it comes back, go in the next.
      this.queued ??= (this.inFlight ?? Promise.resolve()).then(nextTurn).then(() => this.decide());
    });
  }

  private async decide(): Promise<void> {
    this.queued = undefined;
    const batch = this.waiting;
    this.waiting = [];
    const trip = this.run(batch);
    this.inFlight = trip;
    await trip;
    if (this.inFlight === trip) this.inFlight = undefined;
  }

  private async run(batch: Pending[]): Promise<void> {
    // One row per key: requests for the same bucket are counted together and served in arrival order.
    const byKey = new Map<string, Pending[]>();
    for (const p of batch) {
      const list = byKey.get(p.key);
      if (list) list.push(p);
      else byKey.set(p.key, [p]);
    }
    const keys = [...byKey.keys()].sort();
    const first = (k: string) => byKey.get(k)![0]!.bucket;
    try {
      // Named: each session parses and plans it once, not at every batch (most of PostgreSQL's work for a batch otherwise).
      // One JSON parameter: pg encodes array parameters element by element in JavaScript.
      const batchJson = JSON.stringify(keys.map((key) => ({ key, rate: first(key).perMinute / 60, burst: first(key).burst, n: byKey.get(key)!.length })));
      const statement = { name: "heliosdb-rate-limit-decide", text: DECIDE, values: [batchJson] };
      const { rows } = await this.query(statement);
      for (const row of rows) {
        const bucket = first(row.key);
        const counted = { ...row, rate: bucket.perMinute / 60, burst: bucket.burst };
        byKey.get(row.key)!.forEach((p, i) => p.resolve(decision(counted, i)));
        byKey.delete(row.key);
      }
      for (const list of byKey.values()) for (const p of list) p.reject(new Error("the rate-limit statement returned no row for a bucket"));
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
    this.sweep();
  }

  // On the LISTEN session while it listens. If it fails there (the session may be going away, its loss not yet
  // seen), once more on the pool: a statement that failed took nothing, except one whose session was lost between
  // its commit and its answer, and then the requests pay twice, never less.
  private async query(statement: pg.QueryConfig): Promise<pg.QueryResult<Row>> {
    const onSession = this.session?.query<Row>(statement);
    if (!onSession) return this.db.query<Row>(statement);
    return onSession.catch(() => this.db.query<Row>(statement));
  }

  // Buckets full again hold nothing a deleted one would not: their rows go, so the table holds active clients only.
  private sweep(): void {
    if (Date.now() - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = Date.now();
    this.db
      .query("DELETE FROM rate_limits WHERE rate > 0 AND updated_at + make_interval(secs => (burst - tokens) / rate) < now()")
      .catch(() => undefined);
  }
}

// The i-th request (in arrival order) of a key's requests in one statement.
function decision(row: { tokens: number; granted: number; rate: number; burst: number; at: number }, i: number): Decision {
  const allowed = i < row.granted;
  // Tokens after this request: the ones granted after it had not yet been taken.
  const tokens = allowed ? row.tokens + (row.granted - 1 - i) : row.tokens;
  const rate = row.rate;
  const retryAfterSeconds = tokens >= 1 ? 0 : rate > 0 ? Math.max(1, Math.ceil((1 - tokens) / rate)) : Number.MAX_SAFE_INTEGER;
  const resetAt = Math.ceil(row.at + (rate > 0 ? (row.burst - tokens) / rate : 0));
  return { allowed, remaining: Math.floor(tokens), retryAfterSeconds, resetAt };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
