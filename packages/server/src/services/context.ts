// The caller, as the transport's auth interceptor puts it in a call's
// context; services pass it to the controller, which decides with it.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Caller } from "../controller/caller";

export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "the authenticated caller" });

/** The call's caller; undefined for public RPCs (health, reflection). */
export function callerOf(ctx: HandlerContext): Caller | undefined {
  return ctx.values.get(callerKey);
}
