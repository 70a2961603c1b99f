// Everything that proves who calls, assembled once per server: the signing
// keys shared through the control plane, external identity providers, API
// keys, the audit log, and the client addresses the audit log records.
import type pg from "pg";
import { apiKeyHashKey, ApiKeyStore } from "../store/api-keys";
import { AuditEventStore, type AuditRetention } from "../store/audit-events";
import { Notices } from "../store/notices";
import { OAuthGrantStore } from "../store/oauth-grants";
import { SecretBox } from "../store/secrets";
import { SigningKeyStore } from "../store/signing-keys";
import { ApiKeyVerifier } from "./api-key-auth";
import { ClientAddresses } from "./audit";
import { Authenticator, ROLE_PERMISSIONS } from "./auth";
import { JwtVerifier, type ExternalIssuer } from "./jwt";
import { SigningKeyRing, type KeyRingOptions } from "./key-ring";
import { GrantRevocations } from "./oauth-revocation";

/** The channel on which the control plane announces changed signing keys and API keys (migration 5), and revoked OAuth grants (migration 8). */
export const CREDENTIALS_CHANNEL = "heliosdb_credentials";

export interface CredentialOptions {
  db: pg.Pool;
  /** The master key: seals private signing keys, keys API-key hashes. */
  master: Buffer;
  /** This server's data-directory key (jwt.key): the tokens it signed verify. */
  dataDirKey?: Uint8Array;
  /** Identity providers whose tokens are trusted. */
  issuers?: ExternalIssuer[];
  signingKeys?: KeyRingOptions;
  auditRetention?: AuditRetention;
  /**
   * The LISTEN session to hear changed keys on, when the server shares one
   * (it must listen on CREDENTIALS_CHANNEL); else the credentials open their own.
   */
  notices?: Notices;
  log: (message: string) => void;
}

export interface Credentials {
  authenticator: Authenticator;
  ring: SigningKeyRing;
  apiKeys: ApiKeyStore;
  audit: AuditEventStore;
  addresses: ClientAddresses;
  /** The LISTEN session that keeps the caches of keys honest. */
  notices: Notices;
  close(): Promise<void>;
}

export async function startCredentials(options: CredentialOptions): Promise<Credentials> {
  const own = !options.notices;
  const notices = options.notices ?? new Notices(options.db, CREDENTIALS_CHANNEL, "heliosdb-credentials", options.log);
  if (own) await notices.start();
  const ring = new SigningKeyRing(new SigningKeyStore(options.db, new SecretBox(options.master)), notices, { log: options.log, ...options.signingKeys });
  try {
    await ring.start(options.dataDirKey);
  } catch (e) {
    if (own) await notices.close();
    throw e;
  }
  const apiKeys = new ApiKeyStore(options.db, apiKeyHashKey(options.master));
  const audit = new AuditEventStore(options.db, options.auditRetention, options.log);
  const addresses = new ClientAddresses();
  const authenticator = new Authenticator({
    jwt: new JwtVerifier(ring, ROLE_PERMISSIONS, options.issuers),
    apiKeys: new ApiKeyVerifier(apiKeys, notices, ROLE_PERMISSIONS, options.log),
    audit,
    addressOf: (requestId) => addresses.of(requestId),
    log: options.log,
    revoked: new GrantRevocations(new OAuthGrantStore(options.db), notices).isRevoked,
  });
  return {
    authenticator,
    ring,
    apiKeys,
    audit,
    addresses,
    notices,
    async close() {
      ring.close();
      await audit.close();
      if (own) await notices.close();
    },
  };
}
