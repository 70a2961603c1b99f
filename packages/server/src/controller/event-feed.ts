// The event feed: events from the log after a cursor, filtered, for as long
// as the subscriber reads — the one implementation behind
// StreamReplicationEvents and the WebSocket "events" channel.
//
// No event lost, none repeated, on any server: the log is read in pages
// after a position, bounded by the log's head as the same snapshot saw it
// (store/events.ts says why every event up to the head is visible then),
// and the position moves to that head. A client resumes by passing the last
// cursor it received, to any server.
//
// One read per server, not one per subscriber: the server keeps the log's
// recent events (its tail, every event, at most TAIL_MAX) and reads what is
// new once per notification (NOTIFY heliosdb_events, one LISTEN session per
// server) or poll (short while the LISTEN session is down: a lost wake-up
// delays an event, it never drops it). Subscribers at the tail take what
// matches their filter from memory and sleep until the tail brings them
// something; a subscriber behind it (resuming from an old cursor, or too
// slow to keep up) reads the log itself, filtered, until it reaches the tail.
import { apiError } from "../transport/errors";
import type { EventStore, StoredEvent } from "../store/events";
import type { Caller } from "./caller";
import { EVENT_TYPES, isSeverity, SEVERITIES } from "./event-types";
import { Rerun } from "./rerun";
import { Subscriber, SubscriberSet } from "./subscription";
import { Violations } from "./violations";

export interface EventFilter {
  replicationId: string;
  tenantId: string;
  severities: string[];
  eventTypes: string[];
  /** The cursor of the last event received; "" starts with the events appended from now on. */
  cursor: string;
}

export interface FeedEvent extends StoredEvent {
  /** Pass it back as `cursor` to resume after this event. */
  cursor: string;
}

/** The LISTEN session's face the feed needs (store/notices.ts). */
export interface EventNotices {
  readonly listening: boolean;
  on(handler: (payload: string) => void): void;
}

export interface EventFeedDeps {
  events: EventStore;
  notices: EventNotices;
  /** Refuses a replication the caller may not see (NOT_FOUND), as GET does. */
  checkReplication: (caller: Caller | undefined, id: string) => Promise<unknown>;
  /** How often a subscriber reads without a wake-up: while the LISTEN session listens, and while it does not (ms). */
  pollMs?: { listening: number; deaf: number };
}

interface Scope {
  tenantId?: string;
  replicationId?: string;
  severities: Set<string>;
  types: Set<string>;
}

const PAGE = 500;
/** The recent events a server keeps for its subscribers: at most so many, and about so many bytes. */
const TAIL_MAX = 10_000;
const TAIL_MAX_BYTES = 4 * 2 ** 20;
const CURSOR = /^(0|[1-9][0-9]{0,18})$/;

export class EventFeed {
  private readonly subscribers = new SubscriberSet<Scope>();
  private readonly pollMs: { listening: number; deaf: number };
  // The tail: every event with an id from tailFrom + 1 to tailHead, in order (ids are dense).
  private tail: StoredEvent[] = [];
  private tailBytes = 0;
  private tailFrom = -1n;
  private tailHead = -1n;
  private readonly refreshing = new Rerun();
  private readonly fed = new WeakMap<StoredEvent, FeedEvent>();

  constructor(private readonly deps: EventFeedDeps) {
    this.pollMs = deps.pollMs ?? { listening: 30_000, deaf: 1_000 };
    // Any notification ("*" too: the session was down or is back) means the tail may have grown.
    deps.notices.on(() => void this.refresh());
  }

  /** Subscriptions open on this server. */
  get open(): number {
    return this.subscribers.size;
  }

  /**
   * Checks the request and the caller's scope and fixes where the feed
   * starts (the log's head now, for an empty cursor), then returns the
   * events from there until `signal` aborts. A tenant-bound caller gets its
   * tenant's events only: another tenant's replication is NOT_FOUND, another
   * tenant_id FORBIDDEN (as lists are).
   */
  async subscribe(caller: Caller | undefined, filter: EventFilter, signal: AbortSignal): Promise<AsyncIterable<FeedEvent>> {
    const v = new Violations();
    if (filter.replicationId) v.uuid("replication_id", filter.replicationId);
    v.bounded("tenant_id", filter.tenantId, 128);
    filter.severities.forEach((s, i) => {
      if (!isSeverity(s)) v.add(`severities[${i}]`, `one of ${SEVERITIES.join(", ")}`);
    });
    filter.eventTypes.forEach((t, i) => {
      if (!(t in EVENT_TYPES)) v.add(`event_types[${i}]`, `not an event type: "${t.slice(0, 64)}" (docs/observability.md lists them)`);
    });
    if (filter.cursor && !CURSOR.test(filter.cursor)) v.add("cursor", "not a cursor of this API: pass an event's cursor as received, or none");
    v.check();
    if (caller?.tenantId && filter.tenantId && filter.tenantId !== caller.tenantId) {
      throw apiError("FORBIDDEN", `this token may only read events of tenant ${caller.tenantId}`, { tenant_id: filter.tenantId });
    }
    if (filter.replicationId) await this.deps.checkReplication(caller, filter.replicationId);
    const scope: Scope = {
      ...(caller?.tenantId || filter.tenantId ? { tenantId: caller?.tenantId || filter.tenantId } : {}),
      ...(filter.replicationId ? { replicationId: filter.replicationId.toLowerCase() } : {}),
      severities: new Set(filter.severities),
      types: new Set(filter.eventTypes),
    };
    void this.refresh();
    const log = await this.deps.events.head();
    let position = log.head;
    if (filter.cursor) {
      position = BigInt(filter.cursor);
      expiredOrUnknown(position, log.head, log.prunedThrough);
    }
    return this.stream(new Subscriber(signal), scope, position);
  }

  /**
   * Reads what the log holds past the tail, once for every subscriber (a
   * call while a read runs makes it read once more when done), then wakes
   * the subscribers that one of the new events matches.
   */
  private refresh(): Promise<void> {
    // When the control plane does not answer, subscribers poll (and read the log themselves when behind).
    return this.refreshing.run(async () => {
      const before = this.tailHead;
      await this.readTail();
      const fresh = this.tail.slice(Math.max(0, Number(before - this.tailFrom)));
      if (fresh.length > 0) this.subscribers.wake((scope) => fresh.some((e) => matches(scope, e)));
    });
  }

  private async readTail(): Promise<void> {
    if (this.tailHead < 0n) {
      const { head } = await this.deps.events.head();
      this.tailFrom = this.tailHead = head;
    }
    for (;;) {
      const page = await this.deps.events.read(this.tailHead, { severities: [], types: [] }, PAGE);
      // Retention passed the tail (a server idle for long): start again from the log's head.
      if (this.tailHead < page.prunedThrough) {
        this.tail = [];
        this.tailBytes = 0;
        this.tailFrom = this.tailHead = page.head;
        return;
      }
      this.tail.push(...page.events);
      for (const e of page.events) this.tailBytes += sizeOf(e);
      const last = page.events.at(-1)?.id ?? this.tailHead;
      this.tailHead = page.more ? last : page.head > last ? page.head : last;
      let drop = 0;
      while (drop < this.tail.length - 1 && (this.tail.length - drop > TAIL_MAX || this.tailBytes > TAIL_MAX_BYTES)) this.tailBytes -= sizeOf(this.tail[drop++]!);
      if (drop > 0) {
        this.tailFrom = this.tail[drop - 1]!.id;
        this.tail = this.tail.slice(drop);
      }
      if (!page.more) return;
    }
  }

  // Counted from its first read to its end (a feed never read holds nothing).
  private async *stream(subscriber: Subscriber, scope: Scope, from: bigint): AsyncGenerator<FeedEvent> {
    let position = from;
    this.subscribers.add(subscriber, scope);
    const query = {
      ...(scope.tenantId !== undefined ? { tenantId: scope.tenantId } : {}),
      ...(scope.replicationId ? { replicationId: scope.replicationId } : {}),
      severities: [...scope.severities],
      types: [...scope.types],
    };
    try {
      while (!subscriber.signal.aborted) {
        subscriber.dirty = false;
        if (this.tailFrom >= 0n && position >= this.tailFrom && position <= this.tailHead) {
          // At the tail: from memory. The tail may move on while a yield waits for the reader: look again each time.
          while (position < this.tailHead && position >= this.tailFrom) {
            const event = this.tail[Number(position - this.tailFrom)]!;
            position = event.id;
            if (matches(scope, event)) yield this.shared(event);
            if (subscriber.signal.aborted) return;
          }
          if (position < this.tailFrom) continue;
          const woken = await this.sleep(subscriber);
          // No wake-up for a while: read the log once for everyone (a poll), in case one was lost.
          if (!woken) await this.refresh();
          continue;
        }
        // Behind the tail (or before it exists): the log itself, filtered.
        const page = await this.deps.events.read(position, query, PAGE);
        if (subscriber.signal.aborted) return;
        // Retention passed a subscriber that fell behind: say so rather than skip.
        expiredOrUnknown(position, page.head, page.prunedThrough);
        for (const event of page.events) {
          yield { ...event, cursor: event.id.toString() };
          position = event.id;
        }
        if (page.more) continue;
        position = page.head > position ? page.head : position;
        if (this.tailFrom >= 0n && position >= this.tailFrom && position <= this.tailHead) continue;
        if (!(await this.sleep(subscriber))) await this.refresh();
      }
    } finally {
      this.subscribers.delete(subscriber);
    }
  }

  // The tail's events are handed to every subscriber as one object (and whatever is made from it, once).
  private shared(event: StoredEvent): FeedEvent {
    let fed = this.fed.get(event);
    if (!fed) this.fed.set(event, (fed = { ...event, cursor: event.id.toString() }));
    return fed;
  }

  // Whether a wake-up (rather than the poll interval) ended the sleep.
  private async sleep(subscriber: Subscriber): Promise<boolean> {
    await subscriber.sleep(this.deps.notices.listening ? this.pollMs.listening : this.pollMs.deaf);
    return subscriber.dirty;
  }
}

// About what an event holds in memory: its texts, and a little for the rest.
function sizeOf(e: StoredEvent): number {
  let n = 200 + e.message.length + e.type.length + e.tenantId.length + e.replicationId.length;
  for (const [k, v] of Object.entries(e.details)) n += k.length + v.length;
  return n;
}

// Whether an event is one a subscriber's scope asks for (as store/events.ts's read filters).
function matches(scope: Scope, e: StoredEvent): boolean {
  return (
    (scope.tenantId === undefined || scope.tenantId === e.tenantId) &&
    (!scope.replicationId || scope.replicationId === e.replicationId) &&
    (scope.types.size === 0 || scope.types.has(e.type)) &&
    (scope.severities.size === 0 || scope.severities.has(e.severity))
  );
}

function expiredOrUnknown(cursor: bigint, head: bigint, prunedThrough: bigint): void {
  if (cursor < prunedThrough) {
    throw apiError("VALIDATION_ERROR", "the cursor has expired: events after it were removed by the event log's retention; start again without a cursor", {
      violations: [{ field: "cursor", description: `expired: the oldest cursor that can resume is ${prunedThrough}` }],
      cursor: cursor.toString(),
      oldest_cursor: prunedThrough.toString(),
    });
  }
  if (cursor > head) {
    throw apiError("VALIDATION_ERROR", "the cursor is not one of this event log's (it is past its last event)", {
      violations: [{ field: "cursor", description: `unknown: the last event's cursor is ${head}` }],
      cursor: cursor.toString(),
    });
  }
}
