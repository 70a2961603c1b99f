// Rate limits (spec §7): a token bucket per principal, sized by its tier
// (Free 60/min burst 10, Standard 600/50, Premium 6000/200, Enterprise by
// configuration), kept in the control plane (store/rate-limits.ts) so that
// every server sharing it enforces one bucket exactly. One interceptor,
// after authentication, so it knows the principal: every protocol (REST,
// gRPC, gRPC-web, Connect, streams — counted once, at their start —
// WebSocket upgrades) passes through it. Public RPCs (health, readiness,
// reflection, grpc.health.v1) are not limited. Requests whose credentials
// are refused are limited by client address instead (`limitRefusals`):
// once an address's bucket is empty its 401s become 429s.
import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { TIERS } from "../controller/api-keys";
import { callerIdentity } from "../controller/caller";
import type { Bucket, Decision, RateLimitStore } from "../store/rate-limits";
import { principalKey, type Authenticate, type Principal } from "./auth";
import { apiError, apiErrorOf } from "./errors";
import { REQUEST_ID } from "./interceptors";

export type { Bucket };

/** Spec §7.2; Enterprise ("Custom") is 100 × Standard unless configured. */
export const TIER_LIMITS: Record<string, Bucket> = {
  Free: { perMinute: 60, burst: 10 },
  Standard: { perMinute: 600, burst: 50 },
  Premium: { perMinute: 6000, burst: 200 },
  Enterprise: { perMinute: 60_000, burst: 2000 },
};

export interface RateLimitOptions {
  /** Buckets by tier, over TIER_LIMITS (tests make them small and slow). */
  tiers?: Partial<Record<string, Bucket>>;
  /** Buckets of named principals (an Enterprise customer's), by subject: a JWT's `sub`, an API key's `api_key:<id>`. */
  principals?: Record<string, Bucket>;
  /** The tier of a principal whose credential names none (a JWT without a `tier` claim); default Standard. */
  defaultTier?: string;
  /** The tier of each client address's bucket of refused credentials; default Free. */
  addressTier?: string;
}

/** The headers a limited call answers with (CORS exposes them). */
export const RATE_LIMIT_HEADERS = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"];

/**
 * The rate-limit headers of one decision, as name–value pairs: set straight
 * on the answer's headers (a WHATWG Headers made per call only to be copied
 * cost more than the rest of the decision's JavaScript).
 */
export type Limits = [name: string, value: string][];

function setLimits(limits: Limits, on: Headers): void {
  for (const [name, value] of limits) on.set(name, value);
}

export class RateLimiter {
  private readonly tiers: Record<string, Bucket>;
  private readonly defaultTier: string;
  private readonly addressTier: string;

  constructor(
    private readonly store: RateLimitStore,
    private readonly options: RateLimitOptions = {},
  ) {
    this.tiers = { ...TIER_LIMITS, ...(options.tiers as Record<string, Bucket>) };
    this.defaultTier = options.defaultTier ?? "Standard";
    this.addressTier = options.addressTier ?? "Free";
    for (const tier of [this.defaultTier, this.addressTier]) if (!this.tiers[tier]) throw new Error(`no such rate-limit tier: ${tier}`);
  }

  /** The tier a principal's calls count under: its API key's, its JWT's `tier` claim, else the default. */
  tierOf(principal: Principal): string {
    return principal.tier && TIERS.includes(principal.tier) ? principal.tier : this.defaultTier;
  }

  /** The bucket of a principal: configured for it by subject, else its tier's. */
  bucketOf(principal: Principal): Bucket {
    return this.options.principals?.[principal.subject] ?? this.tiers[this.tierOf(principal)]!;
  }

  /** Takes a token of the principal's bucket: its headers, or the 429 (with them) when it is empty. */
  async admit(principal: Principal): Promise<Limits> {
    return this.decide(keyOf(principal), this.bucketOf(principal));
  }

  /**
   * Counts a request against its client address's bucket: a refused
   * credential, or a secret the OAuth endpoints are about to check. The 429
   * once the bucket is empty.
   */
  async admitAddress(address: string): Promise<Limits> {
    return this.decide(`address:${address}`, this.tiers[this.addressTier]!);
  }

  private async decide(key: string, bucket: Bucket): Promise<Limits> {
    let decision: Decision;
    try {
      decision = await this.store.take(key, bucket);
    } catch {
      // The control plane holds the buckets: without it no call could be counted, nor answered.
      throw apiError("SERVICE_UNAVAILABLE", "the rate limit cannot be checked now; retry shortly", {}, 1);
    }
    const limits: Limits = [
      ["x-ratelimit-limit", String(bucket.perMinute)],
      ["x-ratelimit-remaining", String(decision.remaining)],
      ["x-ratelimit-reset", String(decision.resetAt)],
    ];
    if (decision.allowed) return limits;
    const seconds = decision.retryAfterSeconds;
    limits.push(["retry-after", String(seconds)]);
    const error = apiError("RATE_LIMIT_EXCEEDED", `Rate limit exceeded. Retry after ${seconds} seconds.`, { limit: bucket.perMinute, burst: bucket.burst }, seconds);
    setLimits(limits, error.metadata);
    throw error;
  }
}

// The caller's identity (tenant, subject, issuer): two tenants' tokens with the same `sub` are
// two principals. Kept per principal object (a remembered JWT's is the same object every call).
const keys = new WeakMap<Principal, string>();
function keyOf(principal: Principal): string {
  let key = keys.get(principal);
  if (key === undefined) keys.set(principal, (key = `principal:${callerIdentity(principal)}`));
  return key;
}

/** Limits every call of a principal (put in the context by the auth interceptor, before this one); public RPCs pass. */
export function rateLimitInterceptor(limiter: RateLimiter): Interceptor {
  return (next) => async (req) => {
    const principal = req.contextValues.get(principalKey) as Principal | undefined;
    if (!principal) return next(req);
    const limits = await limiter.admit(principal);
    try {
      const res = await next(req);
      setLimits(limits, res.header);
      return res;
    } catch (e) {
      // An error answer of a counted call carries the headers too.
      if (e instanceof ConnectError) setLimits(limits, e.metadata);
      throw e;
    }
  };
}

/**
 * `authenticate`, with each refusal (401) counted against the client's
 * address (`addressOf` a request id): past the address's bucket the answer
 * is 429 RATE_LIMIT_EXCEEDED. The guard calls it before a body is read, so
 * the refusals of every protocol are counted once, where they happen.
 */
export function limitRefusals(authenticate: Authenticate, limiter: RateLimiter, addressOf: (requestId: string | null) => string): Authenticate {
  return async (headers, rpc) => {
    try {
      return await authenticate(headers, rpc);
    } catch (e) {
      throw await countRefusal(e, limiter, addressOf(headers.get(REQUEST_ID)));
    }
  };
}

/** The error to answer for `e`: a refused credential is counted against `address`, and is the 429 past its bucket. */
export async function countRefusal(e: unknown, limiter: RateLimiter, address: string): Promise<unknown> {
  if (!(e instanceof ConnectError) || apiErrorOf(e)?.code !== "UNAUTHORIZED") return e;
  try {
    setLimits(await limiter.admitAddress(address), e.metadata);
    return e;
  } catch (refusal) {
    return refusal;
  }
}

/** Copies the rate-limit headers of a call's response (or error) metadata to an HTTP response (before its head is written). */
export function copyRateLimitHeaders(from: Headers, res: ServerResponse | Http2ServerResponse): void {
  for (const name of RATE_LIMIT_HEADERS) {
    const value = from.get(name);
    if (value !== null) res.setHeader(name, value);
  }
}
