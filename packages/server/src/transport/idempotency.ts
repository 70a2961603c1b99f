// Idempotency-Key on requests that create or change something: the same key
// with the same request answers the first response again (the work is not
// done twice); the same key with another request is a CONFLICT.
import { createHash } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { callerIdentity } from "../controller/caller";
import type { IdempotencyKeyStore } from "../store/idempotency-keys";
import { callerKey } from "../services/context";
import { apiError } from "./errors";

const HEADER = "idempotency-key";

export function idempotencyInterceptor(keys: IdempotencyKeyStore): Interceptor {
  return (next) => async (req) => {
    const key = req.header.get(HEADER);
    if (!key || req.stream || req.method.methodKind !== "unary" || /^(Get|List)/.test(req.method.name)) return next(req);
    if (key.length > 255) throw apiError("INVALID_REQUEST", "Idempotency-Key is longer than 255 characters");
    // Keys are the caller's own (tokens of two tenants may share a subject, e.g. "cli").
    const caller = req.contextValues.get(callerKey);
    const principal = caller ? callerIdentity(caller) : "anonymous";
    const digest = createHash("sha256").update(req.method.parent.typeName).update(req.method.name).update(toBinary(req.method.input, req.message)).digest("hex");
    const replayed = await claimOrReplay(keys, principal, key, req.method.name, digest);
    if (replayed) {
      return {
        stream: false,
        service: req.service,
        method: req.method,
        header: new Headers({ "idempotent-replayed": "true" }),
        trailer: new Headers(),
        message: fromBinary(req.method.output, replayed),
      } as never;
    }
    try {
      const res = await next(req);
      if (!res.stream) {
        await keys.complete(principal, key, toBinary(req.method.output, res.message));
      }
      return res;
    } catch (e) {
      // A failed request did nothing: the key may be used again.
      await keys.release(principal, key).catch(() => undefined);
      throw e;
    }
  };
}

/**
 * Claims the key for this request (undefined), or answers the response of
 * the request that used it first. A key freed between the claim and the read
 * (its request failed) is claimed again.
 */
async function claimOrReplay(keys: IdempotencyKeyStore, principal: string, key: string, method: string, digest: string): Promise<Uint8Array | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await keys.claim(principal, key, method, digest)) return undefined;
    const seen = await keys.get(principal, key);
    if (!seen) continue;
    if (seen.requestSha256 !== digest) throw apiError("CONFLICT", "this Idempotency-Key was used with a different request", { idempotency_key: key });
    if (!seen.response) break;
    return seen.response;
  }
  throw apiError("CONFLICT", "a request with this Idempotency-Key is still in progress", { idempotency_key: key });
}
