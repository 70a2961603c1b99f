import { expect, test } from "vitest";
import { DeliveryQueue } from "./delivery-queue";

function harness(deliver: (n: number) => void | Promise<void>, maxItems = 4, maxBytes = 1000) {
  const events: string[] = [];
  const errors: unknown[] = [];
  const queue = new DeliveryQueue<number>({
    maxItems,
    maxBytes,
    pause: () => events.push("pause"),
    resume: () => events.push("resume"),
    deliver,
    fail: (e) => errors.push(e),
  });
  return { queue, events, errors };
}

test("delivers in order, one at a time, pausing past the bound and resuming at half", async () => {
  const delivered: number[] = [];
  let running = 0;
  let overlap = false;
  const { queue, events } = harness(async (n) => {
    if (++running > 1) overlap = true;
    await new Promise((r) => setTimeout(r, 1));
    delivered.push(n);
    running--;
  });
  for (let i = 0; i < 10; i++) queue.push(i, 1);
  expect(events).toEqual(["pause"]); // the first item is already being delivered: 9 wait, more than 4
  await queue.idle();
  expect(delivered).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(overlap).toBe(false);
  expect(events).toEqual(["pause", "resume"]);
  expect(queue.maxQueued).toBe(9);
});

test("the byte bound pauses too", async () => {
  const { queue, events } = harness(() => new Promise((r) => setTimeout(r, 1)), 100, 10);
  queue.push(1, 6);
  queue.push(2, 6);
  queue.push(3, 6);
  expect(events).toEqual(["pause"]);
  expect(queue.maxQueuedBytes).toBe(12);
  await queue.idle();
  expect(events).toEqual(["pause", "resume"]);
});

test("synchronous consumers are served without waiting for the event loop", () => {
  const delivered: number[] = [];
  const { queue } = harness((n) => void delivered.push(n));
  for (let i = 0; i < 100; i++) queue.push(i, 1);
  expect(delivered).toHaveLength(100);
  expect(queue.maxQueued).toBe(0);
});

test("only items that must wait are retained (copied off the producer's buffer)", async () => {
  const delivered: number[] = [];
  const retained: number[] = [];
  let gate: Promise<void> | undefined;
  const queue = new DeliveryQueue<number>({
    maxItems: 100,
    maxBytes: 1000,
    pause: () => undefined,
    resume: () => undefined,
    deliver: (n) => {
      delivered.push(n);
      return n === 1 ? gate : undefined;
    },
    retain: (n) => {
      retained.push(n);
      return n * 10;
    },
    fail: (e) => {
      throw e;
    },
  });
  let open!: () => void;
  gate = new Promise<void>((r) => (open = r));
  for (let i = 0; i < 4; i++) queue.push(i, 1);
  expect(delivered).toEqual([0, 1]);
  expect(retained).toEqual([2, 3]);
  open();
  await queue.idle();
  queue.push(4, 1);
  expect(delivered).toEqual([0, 1, 20, 30, 4]);
});

test("a throwing consumer stops delivery and reports the error once", async () => {
  const delivered: number[] = [];
  const boom = new Error("boom");
  const { queue, errors, events } = harness(async (n) => {
    await Promise.resolve();
    if (n === 2) throw boom;
    delivered.push(n);
  });
  for (let i = 0; i < 8; i++) queue.push(i, 1);
  await queue.idle();
  queue.push(99, 1);
  await queue.idle();
  expect(delivered).toEqual([0, 1]);
  expect(errors).toEqual([boom]);
  expect(events).toEqual(["pause", "resume"]);
});

test("stop drops what waits, resumes the producer, and lets the running item finish", async () => {
  let release!: () => void;
  const delivered: number[] = [];
  const { queue, events } = harness(async (n) => {
    await new Promise<void>((r) => (release = r));
    delivered.push(n);
  });
  for (let i = 0; i < 6; i++) queue.push(i, 1);
  queue.stop();
  expect(events).toEqual(["pause", "resume"]);
  let idle = false;
  const waiting = queue.idle().then(() => (idle = true));
  await new Promise((r) => setTimeout(r, 5));
  expect(idle).toBe(false);
  release();
  await waiting;
  expect(delivered).toEqual([0]);
});
