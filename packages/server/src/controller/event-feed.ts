// The event feed: events from the log after a cursor, filtered, for as long
// as the subscriber reads — the one implementation behind
// StreamReplicationEvents and the WebSocket "events" channel.
//
// No event lost, none repeated, on any server: a subscriber reads pages of
// the durable log after its position, bounded by the log's head as the same
// snapshot saw it (store/events.ts says why every event up to the head is
// visible then), and moves its position to that head. It sleeps until a
// notification (NOTIFY heliosdb_events, one LISTEN session per server)
// names an event its filter may match, or a poll interval passes (short
// while the LISTEN session is down): a lost wake-up delays an event, it never
// drops it. A client resumes by passing the last cursor it received, to any
// server.
import { apiError } from "../transport/errors";
import type { EventStore, StoredEvent } from "../store/events";
import type { Caller } from "./caller";
import { EVENT_TYPES, isSeverity, SEVERITIES } from "./event-types";
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
const CURSOR = /^(0|[1-9][0-9]{0,18})$/;

export class EventFeed {
  private readonly subscribers = new SubscriberSet<Scope>();
  private readonly pollMs: { listening: number; deaf: number };

  constructor(private readonly deps: EventFeedDeps) {
    this.pollMs = deps.pollMs ?? { listening: 30_000, deaf: 1_000 };
    deps.notices.on((payload) => {
      // "*": the session was down or is back; anything may have been missed.
      if (payload === "*") return this.subscribers.wake();
      const parsed = parsePayload(payload);
      if (!parsed) return this.subscribers.wake();
      const [tenantId, replicationId, type, severity] = parsed;
      this.subscribers.wake(
        (s) =>
          (!s.tenantId || s.tenantId === tenantId) &&
          (!s.replicationId || s.replicationId === replicationId) &&
          (s.types.size === 0 || s.types.has(type)) &&
          (s.severities.size === 0 || s.severities.has(severity)),
      );
    });
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
    const log = await this.deps.events.head();
    let position = log.head;
    if (filter.cursor) {
      position = BigInt(filter.cursor);
      expiredOrUnknown(position, log.head, log.prunedThrough);
    }
    return this.stream(new Subscriber(signal), scope, position);
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
        const page = await this.deps.events.read(position, query, PAGE);
        if (subscriber.signal.aborted) return;
        // Retention passed a subscriber that fell behind: say so rather than skip.
        expiredOrUnknown(position, page.head, page.prunedThrough);
        for (const event of page.events) {
          yield { ...event, cursor: event.id.toString() };
          position = event.id;
        }
        if (page.events.length === PAGE) continue;
        position = page.head > position ? page.head : position;
        await subscriber.sleep(this.deps.notices.listening ? this.pollMs.listening : this.pollMs.deaf);
      }
    } finally {
      this.subscribers.delete(subscriber);
    }
  }
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

function parsePayload(payload: string): [string, string, string, string] | undefined {
  try {
    const [tenantId, replicationId, type, severity] = JSON.parse(payload) as (string | null)[];
    return [tenantId ?? "", replicationId ?? "", type ?? "", severity ?? ""];
  } catch {
    return undefined;
  }
}
