// Passwords and OAuth client secrets at rest: scrypt (memory-hard) with a
// per-secret random salt. N = 2^15, r = 8, p = 1 (32 MiB and ~0.1 s a hash
// here): a stolen table costs an attacker that much per guess. The
// parameters are stored with each hash, so stronger ones can come later
// without a migration. Comparison is constant-time.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

export const SCRYPT = { logN: 15, r: 8, p: 1, keyLength: 32, saltLength: 16 };

function derive(secret: string, salt: Buffer, logN: number, r: number, p: number, keyLength: number): Promise<Buffer> {
  // maxmem above the 128·N·r bytes scrypt needs (node's default, 32 MiB, is exactly that and refuses it).
  const options: ScryptOptions = { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(secret.normalize("NFC"), salt, keyLength, options, (e, key) => (e ? reject(e) : resolve(key))));
}

/** The stored form: `scrypt$<logN>$<r>$<p>$<salt b64url>$<hash b64url>`. */
export async function hashSecret(secret: string): Promise<string> {
  const { logN, r, p, keyLength, saltLength } = SCRYPT;
  const salt = randomBytes(saltLength);
  const key = await derive(secret, salt, logN, r, p, keyLength);
  return ["scrypt", logN, r, p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

// A hash of nothing anyone knows: checked when there is no stored hash, so a
// missing user costs as long as a wrong password (no timing oracle).
let decoy: Promise<string> | undefined;

/** Whether `secret` matches `stored`; with no stored hash, false after the same work. */
export async function verifySecret(secret: string, stored: string | undefined | null): Promise<boolean> {
  const target = stored ?? (await (decoy ??= hashSecret(randomBytes(32).toString("hex"))));
  const [scheme, logN, r, p, salt, hash] = target.split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64url");
  const key = await derive(secret, Buffer.from(salt, "base64url"), Number(logN), Number(r), Number(p), expected.length);
  return timingSafeEqual(key, expected) && !!stored;
}
