import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, test } from "vitest";
import { ReadGate } from "./read-gate";

function socket() {
  const s = new PassThrough();
  s.resume();
  return s;
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
