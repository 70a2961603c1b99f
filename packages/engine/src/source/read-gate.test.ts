import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, test } from "vitest";
import { ReadGate } from "./read-gate";

function socket() {
  const s = new PassThrough();
  s.resume();
  return s;
}

/** Resolves once the socket reads again (the gate's pause is over). */
async function pauseEnds(s: PassThrough): Promise<void> {
  while (s.isPaused()) await new Promise((resolve) => s.once("resume", resolve));
}

test("the socket reads again only when neither the queue nor coalescing holds it", async () => {
  const s = socket();
  const gate = new ReadGate(s);
  gate.hold("queue");
  for (let i = 0; i < 10; i++) gate.coalesce(100, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  await sleep(20);
  // Coalescing is over, but the queue still holds: backpressure is not broken.
  expect(s.isPaused()).toBe(true);
  gate.release("queue");
  expect(s.isPaused()).toBe(false);
});

test("coalescing pauses after a trickle of small reads only, for its time, and not twice at once", async () => {
  const s = socket();
  const gate = new ReadGate(s);
  for (let i = 0; i < 20; i++) gate.coalesce(20_000, 16_384, 5);
  expect(s.isPaused()).toBe(false); // large reads: data is waiting already
  for (let i = 0; i < 20; i++) gate.coalesce(300, 16_384, 0);
  expect(s.isPaused()).toBe(false); // 0 ms: off
  for (let i = 0; i < 9; i++) gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false); // a few small reads: not a trickle yet
  gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  gate.coalesce(300, 16_384, 5);
  await sleep(20);
  expect(s.isPaused()).toBe(false);
});

test("open() releases every hold and the pending timer", async () => {
  const s = socket();
  const gate = new ReadGate(s);
  gate.hold("queue");
  for (let i = 0; i < 10; i++) gate.coalesce(1, 16_384, 50);
  gate.open();
  expect(s.isPaused()).toBe(false);
  gate.release("queue"); // a late release of a hold open() dropped changes nothing
  expect(s.isPaused()).toBe(false);
});

test("while the trickle lasts, a small read right after a pause pauses again at once; a large or late one ends it", async () => {
  const s = socket();
  const gate = new ReadGate(s);
  for (let i = 0; i < 10; i++) gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  await pauseEnds(s);
  // Data waited during the pause: the read after it is small, so the trickle goes on.
  gate.coalesce(4_000, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  await pauseEnds(s);
  // A large read: a bulk stream, no pause, and the next small read is counted anew.
  gate.coalesce(40_000, 16_384, 5);
  gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false);
  for (let i = 0; i < 9; i++) gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  await pauseEnds(s);
  // Nothing waited: the first read comes later than a pause's length after it (a slower stream).
  await sleep(30);
  gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false);
});

test("the trickle goes on only from a read that ends between transactions", async () => {
  const s = socket();
  const gate = new ReadGate(s);
  // Small reads count towards a trickle wherever they end.
  for (let i = 0; i < 10; i++) gate.coalesce(300, 16_384, 5, false);
  expect(s.isPaused()).toBe(true);
  await pauseEnds(s);
  // Right after the pause, but inside a transaction (its sender is mid-send): no pause, counted anew.
  gate.coalesce(300, 16_384, 5, false);
  expect(s.isPaused()).toBe(false);
  gate.coalesce(300, 16_384, 5, true);
  expect(s.isPaused()).toBe(false);
  gate.open();
});
