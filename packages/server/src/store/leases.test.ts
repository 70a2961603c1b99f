// Leases on a real control plane: one owner at a time, taken over only once
// expired, renewed and released only by their owner.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { LeaseStore } from "./leases";

let cp: ControlPlane;
let leases: LeaseStore;
const owner = async (id: string) => (await cp.pool.query("SELECT owner FROM leases WHERE replication_id = $1", [id])).rows[0]?.owner;
// Tests expire a lease by moving its time back, rather than waiting for it.
const expire = (id: string) => cp.pool.query("UPDATE leases SET expires_at = now() - interval '1 second' WHERE replication_id = $1", [id]);

beforeAll(async () => {
  cp = await startControlPlane();
  leases = new LeaseStore(cp.pool);
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

test("two owners: the first takes a free lease, the second waits while it lives", async () => {
  const id = randomUUID();
  expect(await leases.acquire(id, "a", 15)).toBe(true);
  expect(await leases.acquire(id, "b", 15)).toBe(false);
  // The owner may take it again (it extends it).
  expect(await leases.acquire(id, "a", 15)).toBe(true);
  expect(await owner(id)).toBe("a");
});

test("an expired lease is taken over, and its former owner can neither renew nor release it", async () => {
  const id = randomUUID();
  expect(await leases.acquire(id, "a", 15)).toBe(true);
  await expire(id);
  expect(await leases.acquire(id, "b", 15)).toBe(true);
  expect(await owner(id)).toBe("b");
  expect(await leases.renew(id, "a", 15)).toBe(false);
  await leases.release(id, "a");
  expect(await owner(id)).toBe("b");
});

test("renewal: only by the owner, and it keeps the lease from expiring", async () => {
  const id = randomUUID();
  expect(await leases.renew(id, "a", 15)).toBe(false);
  expect(await leases.acquire(id, "a", 15)).toBe(true);
  expect(await leases.renew(id, "b", 15)).toBe(false);
  await expire(id);
  expect(await leases.renew(id, "a", 15)).toBe(true);
  const { rows } = await cp.pool.query("SELECT expires_at > now() + interval '10 seconds' AS live FROM leases WHERE replication_id = $1", [id]);
  expect(rows[0].live).toBe(true);
  expect(await leases.acquire(id, "b", 15)).toBe(false);
});

test("a released lease is free for another owner at once", async () => {
  const id = randomUUID();
  expect(await leases.acquire(id, "a", 15)).toBe(true);
  await leases.release(id, "b");
  expect(await owner(id)).toBe("a");
  await leases.release(id, "a");
  expect(await owner(id)).toBeUndefined();
  expect(await leases.acquire(id, "b", 15)).toBe(true);
});
