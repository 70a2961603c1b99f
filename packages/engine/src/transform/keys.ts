// Per-tenant, per-purpose keys. Every secret the transform stage uses comes
// from one place so that keys are separated by tenant (one tenant's hashes
// and tokens say nothing about another's) and by purpose (a hash is never a
// token, and the vault key never signs anything), and so that a KMS-backed
// provider can replace the master-key one without touching callers.
import { hkdf } from "node:crypto";

/** What a key is used for; each purpose gets an independent key. */
export type KeyPurpose = "hash" | "tokenize" | "vault" | "batch";

export const KEY_PURPOSES: readonly KeyPurpose[] = ["hash", "tokenize", "vault", "batch"];

/** Length of every key, in bytes (AES-256 and HMAC-SHA-256 both want 32). */
export const KEY_LENGTH = 32;

export interface KeyProvider {
  /** The tenant's 32-byte key for `purpose`. The same inputs always give the same key. */
  key(tenantId: string, purpose: KeyPurpose): Promise<Buffer>;
}

// A fixed, versioned salt: HKDF's salt need not be secret, and fixing it keeps
// derivation reproducible across processes. Bump the version to rotate every
// derived key at once.
const SALT = Buffer.from("heliosdb/replication/transform-keys/v1", "utf8");

/** Derives keys from one 32-byte master key with HKDF-SHA-256, caching them. */
export class MasterKeyProvider implements KeyProvider {
  readonly #master: Buffer;
  // Caching the promise (not the buffer) makes concurrent first calls share
  // one derivation.
  readonly #cache = new Map<string, Promise<Buffer>>();

  constructor(masterKey: Buffer | Uint8Array) {
    if (masterKey.length !== KEY_LENGTH) {
      throw new Error(`the master key must be ${KEY_LENGTH} bytes, got ${masterKey.length}`);
    }
    // Copy so later mutation of the caller's buffer cannot change our keys.
    this.#master = Buffer.from(masterKey);
  }

  /** A provider from a hex or base64 encoded master key (e.g. from an environment variable). */
  static fromString(encoded: string): MasterKeyProvider {
    const text = encoded.trim();
    const bytes = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, "hex") : Buffer.from(text, "base64");
    return new MasterKeyProvider(bytes);
  }

  key(tenantId: string, purpose: KeyPurpose): Promise<Buffer> {
    if (!KEY_PURPOSES.includes(purpose)) return Promise.reject(new Error(`unknown key purpose ${JSON.stringify(purpose)}`));
    // The purpose comes first and has no NUL byte, so distinct (purpose, tenant)
    // pairs always give distinct info strings, whatever characters tenant ids use.
    const info = `${purpose}\u0000${tenantId}`;
    let key = this.#cache.get(info);
    if (!key) {
      key = new Promise<Buffer>((resolve, reject) => {
        hkdf("sha256", this.#master, SALT, Buffer.from(info, "utf8"), KEY_LENGTH, (err, derived) => {
          if (err) reject(err);
          else resolve(Buffer.from(derived));
        });
      });
      // Do not cache a failure: a later call may succeed.
      key.catch(() => this.#cache.delete(info));
      this.#cache.set(info, key);
    }
    // A copy per caller: one caller zeroing or reusing its buffer must not
    // corrupt the key every other caller shares.
    return key.then((k) => Buffer.from(k));
  }
}
