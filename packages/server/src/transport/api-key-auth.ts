// X-API-Key (spec §5.2): a key is looked up by its keyed hash, and its row
// kept in memory while the control plane's notifications are heard. A key
// revoked on any server is refused at once on every server: before a kept
// row is trusted, the notifications sent before this request began are
// waited for (store/notices.ts), and a revocation has evicted the row. A
// call waits for them after its rate-limit decision (`identify`, then
// `confirm`), whose round trip on the same session is the one it needs.
import type { ApiKeyRow, ApiKeyStore } from "../store/api-keys";
import { API_KEY_FORM } from "../store/api-keys";
import type { Notices } from "../store/notices";
import { CredentialRefused, type Principal, type RolePermissions } from "./jwt";

/** Rows kept at most; past it the oldest is dropped (and read again when used). */
const MAX_KEYS = 10_000;
/** last_used_at is written at most this often per key (and server). */
const TOUCH_EVERY_MS = 60_000;

export class ApiKeyVerifier {
  private readonly rows = new Map<string, ApiKeyRow>();
  private readonly touched = new Map<string, number>();
  private readonly principals = new WeakMap<ApiKeyRow, Principal>();

  constructor(
    private readonly store: ApiKeyStore,
    private readonly notices: Notices,
    private readonly roles: RolePermissions,
    private readonly log: (message: string) => void = () => undefined,
  ) {
    notices.on((payload) => {
      if (payload === "*") this.rows.clear();
      else if (payload.startsWith("api_key:")) this.rows.delete(payload.slice("api_key:".length));
    });
  }

  /** The key's principal; throws CredentialRefused for a malformed, unknown, revoked or expired key. */
  async principal(secret: string): Promise<Principal> {
    if (!API_KEY_FORM.test(secret)) throw new CredentialRefused("the API key is malformed", "api_key");
    return this.valid(await this.row(secret));
  }

  /**
   * The key's principal as this server keeps it, without waiting: with
   * `confirm`, which resolves the principal once a round trip on the
   * session, sent after this call, is back (and reads the key again if a
   * change evicted it meanwhile). A caller that sends such a trip anyway
   * (the rate-limit decision) confirms for nothing; until it has confirmed,
   * the principal decides nothing that changes or reveals data.
   */
  async identify(secret: string): Promise<{ principal: Principal; confirm?: () => Promise<Principal> }> {
    if (!API_KEY_FORM.test(secret)) throw new CredentialRefused("the API key is malformed", "api_key");
    const hex = this.store.hash(secret).toString("hex");
    const kept = this.notices.listening ? this.rows.get(hex) : undefined;
    if (!kept) return { principal: await this.principal(secret) };
    const ticket = this.notices.ticket();
    const principal = this.valid(kept);
    const confirm = async () => ((await this.notices.caughtUp(ticket)) && this.rows.get(hex) === kept ? principal : this.principal(secret));
    return { principal, confirm };
  }

  private valid(row: ApiKeyRow | undefined): Principal {
    if (!row) throw new CredentialRefused("the API key is not valid", "api_key");
    if (row.revokedAt) throw new CredentialRefused("the API key was revoked", "api_key", row.id);
    if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) throw new CredentialRefused("the API key has expired", "api_key", row.id);
    this.touch(row.id);
    return this.principalOf(row);
  }

  // One principal per kept row: the same object every call, as a remembered JWT's (the rate limiter keys its bucket by it).
  private principalOf(row: ApiKeyRow): Principal {
    let principal = this.principals.get(row);
    if (!principal) {
      const permissions = row.permissions.length > 0 ? row.permissions : row.roles.flatMap((r) => this.roles[r] ?? []);
      principal = {
        subject: `api_key:${row.id}`,
        roles: row.roles,
        permissions: new Set(permissions),
        ...(row.tenantId ? { tenantId: row.tenantId } : {}),
        credential: { type: "api_key", id: row.id },
        tier: row.tier,
      };
      this.principals.set(row, principal);
    }
    return principal;
  }

  private async row(secret: string): Promise<ApiKeyRow | undefined> {
    const hash = this.store.hash(secret);
    const hex = hash.toString("hex");
    const kept = this.notices.listening ? this.rows.get(hex) : undefined;
    // Still kept after the round trip: no change committed before this request began evicted it.
    if (kept && (await this.notices.caughtUp()) && this.rows.get(hex) === kept) return kept;
    const epoch = this.notices.epoch;
    const row = await this.store.findByHash(hash);
    if (row && this.notices.listening && epoch === this.notices.epoch) {
      if (this.rows.size >= MAX_KEYS) this.rows.delete(this.rows.keys().next().value!);
      this.rows.set(hex, row);
    }
    return row;
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    if (this.touched.size >= MAX_KEYS) this.touched.clear();
    this.touched.set(id, now);
    this.store.touch(id).catch((e) => this.log(`api key ${id}: last_used_at not written: ${(e as Error).message}`));
  }
}
