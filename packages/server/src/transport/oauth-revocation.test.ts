// The revocation check of OAuth access tokens, kept in memory by two
// "servers" (each its own LISTEN session) on one control plane: a live grant
// is read once, and a grant revoked or deleted through either is refused by
// both at the very next call.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Notices } from "../store/notices";
import { OAuthGrantStore } from "../store/oauth-grants";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { CREDENTIALS_CHANNEL } from "./credentials";
import type { Principal } from "./jwt";
import { GrantRevocations } from "./oauth-revocation";

let cp: ControlPlane;
const servers: { notices: Notices; revocations: GrantRevocations; reads: () => number }[] = [];
let grants: OAuthGrantStore;

// A grant store that counts its revocation reads.
class CountingGrants extends OAuthGrantStore {
  reads = 0;
  override async isRevoked(id: string): Promise<boolean> {
    this.reads++;
    return super.isRevoked(id);
  }
}

beforeAll(async () => {
  cp = await startControlPlane();
  grants = new OAuthGrantStore(cp.pool);
  for (let i = 0; i < 2; i++) {
    const notices = new Notices(cp.pool, CREDENTIALS_CHANNEL, `test-oauth-revocation-${i}`);
    await notices.start();
    const store = new CountingGrants(cp.pool);
    servers.push({ notices, revocations: new GrantRevocations(store, notices), reads: () => store.reads });
  }
}, 120_000);

afterAll(async () => {
  for (const s of servers) await s.notices.close();
  await cp?.close();
}, 60_000);

async function newGrant(): Promise<{ id: string; clientId: string }> {
  const clientId = randomUUID();
  await cp.pool.query(`INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, tenant_id, roles, permissions, created_by) VALUES ($1, 'c', '{}', '{client_credentials}', 't', '{}', '{}', 'test')`, [clientId]);
  return { id: (await grants.createGrant(clientId, undefined, "", 3600)).id, clientId };
}

const holder = (grantId: string): Principal => ({ subject: "client", roles: [], permissions: new Set(), credential: { type: "jwt", id: `oat_${grantId}.x` } });

test("a live grant is read once per server; revoked through one server, both refuse it at the next call", async () => {
  const { id } = await newGrant();
  for (const s of servers) {
    const before = s.reads();
    for (let i = 0; i < 5; i++) expect(await s.revocations.isRevoked(holder(id))).toBe(false);
    expect(s.reads() - before).toBe(1);
  }
  expect(await grants.revoke(id, "test")).toBe(true);
  for (const s of servers) expect(await s.revocations.isRevoked(holder(id))).toBe(true);
});

test("a grant deleted with its client is refused by both at once", async () => {
  const { id, clientId } = await newGrant();
  for (const s of servers) expect(await s.revocations.isRevoked(holder(id))).toBe(false);
  await cp.pool.query("DELETE FROM oauth_clients WHERE id = $1", [clientId]);
  for (const s of servers) expect(await s.revocations.isRevoked(holder(id))).toBe(true);
});

test("tokens not from the token endpoint are not looked up; nothing is kept while not listening", async () => {
  const [s] = servers;
  const before = s!.reads();
  expect(await s!.revocations.isRevoked({ subject: "cli", roles: [], permissions: new Set(), credential: { type: "jwt", id: randomUUID() } })).toBe(false);
  expect(s!.reads()).toBe(before);
  const off = new Notices(cp.pool, CREDENTIALS_CHANNEL, "test-oauth-revocation-off");
  const counting = new CountingGrants(cp.pool);
  const revocations = new GrantRevocations(counting, off);
  const { id } = await newGrant();
  for (let i = 0; i < 3; i++) expect(await revocations.isRevoked(holder(id))).toBe(false);
  expect(counting.reads).toBe(3);
});
