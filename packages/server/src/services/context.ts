// The caller, as the transport's auth interceptor puts it in a call's
// context; services pass it to the controller, which decides with it.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Caller } from "../controller/caller";

export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "the authenticated caller" });

/**
 * The replication cache session's mark (store/notices.ts `ticket`) when the
 * call arrived: a read from memory is current once a round trip sent after
 * it is back, which the call's rate-limit decision may already be.
 */
export const arrivalKey = createContextKey<number | undefined>(undefined, { description: "the cache session's mark at arrival" });

/** The call's caller; undefined for public RPCs (health, reflection). */
export function callerOf(ctx: HandlerContext): Caller | undefined {
  return ctx.values.get(callerKey);
}

/**
 * Called by a server-streaming implementation once its subscription is
 * open — the request checked, the caller's scope applied, where it starts
 * fixed — before its first message (a generator's body runs only at the
 * first read). The WebSocket gateway acknowledges a subscribe with it, so
 * "subscribed" means every later event will come.
 */
export const streamOpenedKey = createContextKey<(() => void) | undefined>(undefined, { description: "the stream is open" });

/** Says the stream is open (see streamOpenedKey); nothing when nobody asked. */
export function streamOpened(ctx: HandlerContext): void {
  ctx.values.get(streamOpenedKey)?.();
}
