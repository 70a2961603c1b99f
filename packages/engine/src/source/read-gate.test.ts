import { PassThrough } from "node:stream";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { ReadGate } from "./read-gate";

// The gate's decisions hang on milliseconds (10 small reads within 10 ms, a
// read within a pause's length after it): on a real clock a loaded host that
// stalls inside a loop of reads crosses a window and the test fails. The
// fake clock moves only when a test says so.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Lets `ms` pass on the fake clock, firing the gate's timer when due. */
function sleep(ms: number): void {
  vi.advanceTimersByTime(ms);
}

function socket() {
  const s = new PassThrough();
  s.resume();
  return s;
}

/** Lets a coalescing pause (5 ms) run out: the socket reads again. */
function pauseEnds(s: PassThrough): void {
  expect(s.isPaused()).toBe(true);
  sleep(5);
  expect(s.isPaused()).toBe(false);
}

test("the socket reads again only when neither the queue nor coalescing holds it", () => {
  const s = socket();
  const gate = new ReadGate(s);
  gate.hold("queue");
  for (let i = 0; i < 10; i++) gate.coalesce(100, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  sleep(20);
  // Coalescing is over, but the queue still holds: backpressure is not broken.
  expect(s.isPaused()).toBe(true);
  gate.release("queue");
  expect(s.isPaused()).toBe(false);
});

test("coalescing pauses after a trickle of small reads only, for its time, and not twice at once", () => {
  const s = socket();
  const gate = new ReadGate(s);
  for (let i = 0; i < 20; i++) gate.coalesce(20_000, 16_384, 5);
  expect(s.isPaused()).toBe(false); // large reads: data is waiting already
  for (let i = 0; i < 20; i++) gate.coalesce(300, 16_384, 0);
  expect(s.isPaused()).toBe(false); // 0 ms: off
  for (let i = 0; i < 9; i++) gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false); // a few small reads: not a trickle yet
  sleep(11);
  gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false); // ten, but not within 10 ms: a slower stream
  for (let i = 0; i < 8; i++) gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false);
  gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  gate.coalesce(300, 16_384, 5);
  sleep(20);
  expect(s.isPaused()).toBe(false);
});

test("open() releases every hold and the pending timer", () => {
  const s = socket();
  const gate = new ReadGate(s);
  gate.hold("queue");
  for (let i = 0; i < 10; i++) gate.coalesce(1, 16_384, 50);
  gate.open();
  expect(s.isPaused()).toBe(false);
  gate.release("queue"); // a late release of a hold open() dropped changes nothing
  expect(s.isPaused()).toBe(false);
});

test("while the trickle lasts, a small read right after a pause pauses again at once; a large or late one ends it", () => {
  const s = socket();
  const gate = new ReadGate(s);
  for (let i = 0; i < 10; i++) gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  pauseEnds(s);
  // Data waited during the pause: the read after it is small, so the trickle goes on.
  gate.coalesce(4_000, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  pauseEnds(s);
  // A large read: a bulk stream, no pause, and the next small read is counted anew.
  gate.coalesce(40_000, 16_384, 5);
  gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false);
  for (let i = 0; i < 9; i++) gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(true);
  pauseEnds(s);
  // Nothing waited: the first read comes later than a pause's length after it (a slower stream).
  sleep(30);
  gate.coalesce(300, 16_384, 5);
  expect(s.isPaused()).toBe(false);
});

test("the trickle goes on only from a read that ends between transactions", () => {
  const s = socket();
  const gate = new ReadGate(s);
  // Small reads count towards a trickle wherever they end.
  for (let i = 0; i < 10; i++) gate.coalesce(300, 16_384, 5, false);
  expect(s.isPaused()).toBe(true);
  pauseEnds(s);
  // Right after the pause, but inside a transaction (its sender is mid-send): no pause, counted anew.
  gate.coalesce(300, 16_384, 5, false);
  expect(s.isPaused()).toBe(false);
  gate.coalesce(300, 16_384, 5, true);
  expect(s.isPaused()).toBe(false);
  gate.open();
});
