// Idempotency keys on a real control plane: claimed once per principal,
// answered with the first response, freed when the request failed.
import { afterAll, beforeAll, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { IdempotencyKeyStore } from "./idempotency-keys";

let cp: ControlPlane;
let keys: IdempotencyKeyStore;

beforeAll(async () => {
  cp = await startControlPlane();
  keys = new IdempotencyKeyStore(cp.pool);
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

test("a key is claimed once per principal; the claim records the request's digest, no response yet", async () => {
  expect(await keys.claim("alice", "k1", "CreateReplication", "digest-1")).toBe(true);
  expect(await keys.claim("alice", "k1", "CreateReplication", "digest-2")).toBe(false);
  expect(await keys.get("alice", "k1")).toEqual({ requestSha256: "digest-1", response: null });
  // Another principal's key of the same name is another key.
  expect(await keys.claim("bob", "k1", "CreateReplication", "digest-3")).toBe(true);
  expect(await keys.get("nobody", "k1")).toBeUndefined();
});

test("the completed request's response is kept for its repeats", async () => {
  expect(await keys.claim("alice", "k2", "StartReplication", "digest")).toBe(true);
  await keys.complete("alice", "k2", new Uint8Array([1, 2, 3]));
  const seen = await keys.get("alice", "k2");
  expect(seen?.requestSha256).toBe("digest");
  expect([...seen!.response!]).toEqual([1, 2, 3]);
});

test("a released key may be claimed again", async () => {
  expect(await keys.claim("alice", "k3", "StopReplication", "digest")).toBe(true);
  await keys.release("alice", "k3");
  expect(await keys.get("alice", "k3")).toBeUndefined();
  expect(await keys.claim("alice", "k3", "StopReplication", "other")).toBe(true);
});
