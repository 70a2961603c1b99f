// Whether an OAuth access token's grant was revoked (spec §5.3: a reused
// code or refresh token, POST /oauth/revoke, a deleted client or user, a new
// password). Every call that carries such a token asks, so the answer is kept
// in memory while the control plane's notifications are heard (migration 8
// NOTIFYs each revoked or deleted grant on the credentials channel), and a
// kept answer is trusted only after the barrier of store/notices.ts, as for
// API keys: a grant revoked on any server is refused at once on every server,
// without a query of the grant per call.
import type { Notices } from "../store/notices";
import type { OAuthGrantStore } from "../store/oauth-grants";
import type { Principal } from "./jwt";
import { grantOfJti } from "./oauth-tokens";

/** Grants kept at most; past it the oldest is dropped (and read again when used). */
const MAX_GRANTS = 10_000;

export class GrantRevocations {
  // By grant id; an object per answer, so that a kept one is known to be the one read before the barrier.
  private readonly kept = new Map<string, { revoked: boolean }>();

  constructor(
    private readonly grants: OAuthGrantStore,
    private readonly notices: Notices,
  ) {
    notices.on((payload) => {
      if (payload === "*") this.kept.clear();
      else if (payload.startsWith("oauth_grant:")) this.kept.delete(payload.slice("oauth_grant:".length));
    });
  }

  /** Whether a principal's token came from the token endpoint and its grant was revoked since (for the Authenticator). */
  readonly isRevoked = async (principal: Principal): Promise<boolean> => {
    const credential = principal.credential;
    // Most calls carry no token of the token endpoint: a prefix test is all they pay.
    const grant = credential?.type === "jwt" && credential.id.startsWith("oat_") ? grantOfJti(credential.id) : undefined;
    if (!grant) return false;
    const kept = this.notices.listening ? this.kept.get(grant) : undefined;
    // A revoked grant stays revoked (and a deleted one deleted): no barrier needed to refuse.
    if (kept?.revoked) return true;
    // Still kept after the round trip: no revocation committed before this request began evicted it.
    if (kept && (await this.notices.caughtUp()) && this.kept.get(grant) === kept) return false;
    const epoch = this.notices.epoch;
    const revoked = await this.grants.isRevoked(grant);
    if (this.notices.listening && epoch === this.notices.epoch) {
      if (this.kept.size >= MAX_GRANTS) this.kept.delete(this.kept.keys().next().value!);
      this.kept.set(grant, { revoked });
    }
    return revoked;
  };
}
