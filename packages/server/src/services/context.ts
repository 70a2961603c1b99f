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
