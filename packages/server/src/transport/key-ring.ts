// The server's own JWT keys, as every server of a control plane shares them
// (store/signing-keys.ts): the current key signs (ES256 unless configured),
// keys it replaced verify until they retire, and each server's data-directory
// key (jwt.key, HS256) verifies the tokens `heliosdb-replication-server token`
// prints. A change made by any server reaches the others by NOTIFY; a token
// naming a kid this server does not know waits for the notifications already
// sent (store/notices.ts) before it is refused.
import { createHash } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import type { Notices } from "../store/notices";
import type { NewSigningKey, SigningAlgorithm, SigningKeyRow, SigningKeyStore } from "../store/signing-keys";

export interface VerificationKey {
  kid: string;
  alg: SigningAlgorithm;
  key: CryptoKey;
  /** When it stops verifying (a replaced key), in epoch milliseconds. */
  retiresAt?: number;
}

/** A key that signs: the header's alg and kid, and the private key. */
export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  key: CryptoKey;
}

/** Where the verifier finds the server's own keys. */
export interface KeySource {
  /** The key of a kid, if it verifies now; refreshes first when this server does not know the kid. */
  find(kid: string): Promise<VerificationKey | undefined>;
  /** Whether a kid verifies now (a remembered token is refused once its key retires). */
  has(kid: string): boolean;
  /** The keys a token without a kid may be signed with: HS256 ones (tokens printed before keys had ids). */
  withoutKid(): Promise<VerificationKey[]>;
}

/** The kid of an HS256 secret: a digest of it (which reveals nothing of a 256-bit secret). */
export function localKid(secret: Uint8Array): string {
  return `local-${createHash("sha256").update("heliosdb jwt kid\0").update(secret).digest("base64url").slice(0, 16)}`;
}

function hmacKey(secret: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new Uint8Array(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** One HS256 secret, and nothing else: for tests that run the interceptors without a control plane. */
export class StaticKeys implements KeySource {
  private readonly key: Promise<VerificationKey>;
  private readonly kid: string;

  constructor(secret: Uint8Array) {
    this.kid = localKid(secret);
    this.key = hmacKey(secret).then((key) => ({ kid: this.kid, alg: "HS256", key }));
  }

  async find(kid: string) {
    return kid === this.kid ? this.key : undefined;
  }

  has(kid: string) {
    return kid === this.kid;
  }

  async withoutKid(): Promise<VerificationKey[]> {
    return [await this.key];
  }
}

export interface KeyRingOptions {
  /** The algorithm of new keys (default ES256). */
  algorithm?: "ES256" | "RS256";
  /** A current key older than this is replaced (default 30 days). */
  rotateAfterMs?: number;
  /** How long a replaced key still verifies (default 2 days: longer than the tokens the server prints live). */
  overlapMs?: number;
  log?: (message: string) => void;
}

const DAY_MS = 86_400_000;
const CHECK_EVERY_MS = 3_600_000;
const RELOAD_AT_MOST_EVERY_MS = 1000;

export class SigningKeyRing implements KeySource {
  private keys = new Map<string, VerificationKey>();
  private current: SigningKey | undefined;
  private publicJwks: JWK[] = [];
  private reloading: Promise<void> | undefined;
  private lastLoad = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly algorithm: "ES256" | "RS256";
  private readonly rotateAfterMs: number;
  private readonly overlapMs: number;
  private readonly log: (message: string) => void;

  constructor(
    private readonly store: SigningKeyStore,
    private readonly notices: Notices,
    options: KeyRingOptions = {},
  ) {
    this.algorithm = options.algorithm ?? "ES256";
    this.rotateAfterMs = options.rotateAfterMs ?? 30 * DAY_MS;
    this.overlapMs = options.overlapMs ?? 2 * DAY_MS;
    this.log = options.log ?? (() => undefined);
    notices.on((payload) => {
      // Not once closed: the session's own close says "*", and the pool may be ending.
      if (!this.closed && (payload === "*" || payload === "signing_keys")) void this.reload();
    });
  }

  /** Imports the data directory's key, makes a current key if there is none (or it is old), loads the keys, and checks them hourly. */
  async start(dataDirKey?: Uint8Array): Promise<void> {
    if (dataDirKey) await this.store.importDataDirKey(localKid(dataDirKey), Buffer.from(dataDirKey).toString("hex"));
    await this.maintain();
    this.timer = setInterval(() => void this.maintain().catch((e) => this.log(`signing keys: ${(e as Error).message}`)), CHECK_EVERY_MS);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /** Replaces the current key now; the one it replaces verifies for the overlap. Resolves the new kid. */
  async rotate(): Promise<string> {
    const kid = (await this.store.rotate(() => this.generate(), { maxAgeMs: this.rotateAfterMs, overlapMs: this.overlapMs, force: true }))!;
    await this.reload();
    return kid;
  }

  /** Retires a key at once: the tokens it signed are refused by every server. */
  async retire(kid: string): Promise<boolean> {
    const retired = await this.store.retire(kid);
    await this.reload();
    return retired;
  }

  async find(kid: string): Promise<VerificationKey | undefined> {
    if (this.has(kid)) return this.keys.get(kid);
    // Perhaps newer than this server's copy: wait for the notifications already sent (or read again when not listening).
    if (await this.notices.caughtUp()) await this.reloading;
    else if (Date.now() - this.lastLoad >= RELOAD_AT_MOST_EVERY_MS) await this.reload();
    return this.has(kid) ? this.keys.get(kid) : undefined;
  }

  has(kid: string): boolean {
    const key = this.keys.get(kid);
    return key !== undefined && (key.retiresAt === undefined || key.retiresAt > Date.now());
  }

  async withoutKid(): Promise<VerificationKey[]> {
    return [...this.keys.values()].filter((k) => k.alg === "HS256" && this.has(k.kid));
  }

  /** The public keys that verify now, as /.well-known/jwks.json serves them. */
  jwks(): { keys: JWK[] } {
    return { keys: this.publicJwks.filter((k) => this.has(k.kid!)) };
  }

  /** The key that signs now (the newest generated key); throws when the control plane has none yet. */
  async currentKey(): Promise<SigningKey> {
    if (!this.current) await this.reload();
    if (!this.current) throw new Error("the control plane has no signing key yet: start a server on it first");
    return this.current;
  }

  private async maintain(): Promise<void> {
    await this.store.retireExpired();
    await this.store.rotate(() => this.generate(), { maxAgeMs: this.rotateAfterMs, overlapMs: this.overlapMs });
    await this.reload();
  }

  private async generate(): Promise<NewSigningKey> {
    const { privateKey, publicKey } = await generateKeyPair(this.algorithm, { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    return { kid, alg: this.algorithm, privateKey: JSON.stringify(await exportJWK(privateKey)), publicJwk: { ...publicJwk } };
  }

  // Reloads shared by whoever asks while one runs; one more starts after it when asked again.
  private reload(): Promise<void> {
    const next = (this.reloading ?? Promise.resolve()).then(() => this.load());
    const tracked = next.catch((e) => this.log(`signing keys not reloaded: ${(e as Error).message}`));
    this.reloading = tracked;
    void tracked.then(() => {
      if (this.reloading === tracked) this.reloading = undefined;
    });
    return tracked;
  }

  private async load(): Promise<void> {
    const rows = await this.store.active();
    const keys = new Map<string, VerificationKey>();
    const publicJwks: JWK[] = [];
    let current: SigningKeyRing["current"];
    for (const row of rows) {
      keys.set(row.kid, { kid: row.kid, alg: row.alg, key: await verifyingKey(row), ...(row.retiresAt ? { retiresAt: row.retiresAt.getTime() } : {}) });
      if (row.publicJwk) publicJwks.push({ ...(row.publicJwk as JWK), kid: row.kid, alg: row.alg, use: "sig" });
      if (!current && row.origin === "generated" && !row.supersededAt) {
        current = { kid: row.kid, alg: row.alg, key: (await importJWK(JSON.parse(row.privateKey) as JWK, row.alg)) as CryptoKey };
      }
    }
    this.keys = keys;
    this.publicJwks = publicJwks;
    this.current = current;
    this.lastLoad = Date.now();
  }
}

async function verifyingKey(row: SigningKeyRow): Promise<CryptoKey> {
  if (row.alg === "HS256") return hmacKey(Buffer.from(row.privateKey, "hex"));
  return (await importJWK(row.publicJwk as JWK, row.alg)) as CryptoKey;
}
