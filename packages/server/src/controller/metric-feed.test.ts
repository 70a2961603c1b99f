// The metric feed's cadence, on fake timers: the first sample at once, then
// one per interval on a fixed schedule — a reader that takes a while with
// each sample does not push the next ones back, and one slower than the
// interval skips the slots it missed instead of getting them in a burst.
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import type { ReplicationRow } from "../store/replications";
import { MetricFeed } from "./metric-feed";

const ID = "0b0b8c5e-6f0a-4a8e-9d55-3c1f6c0f2a11";
const ROW = { id: ID, tenantId: "tenant-123" } as unknown as ReplicationRow;

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

function feed(): MetricFeed {
  return new MetricFeed({
    get: async () => ROW,
    latest: async () => ROW,
    observe: () => ({ status: "Streaming", health: "Healthy", figures: null }),
    onChange: () => undefined,
  });
}

/** When each of the first `n` samples reached a reader that spends `readerMs` on each, in ms from the subscription. */
async function arrivals(n: number, readerMs: number, intervalSeconds = 1): Promise<number[]> {
  const start = Date.now();
  const stream = await feed().subscribe(undefined, { replicationId: ID, intervalSeconds }, new AbortController().signal);
  const times: number[] = [];
  const reading = (async () => {
    for await (const _ of stream) {
      times.push(Date.now() - start);
      if (times.length === n) break;
      await new Promise((resolve) => setTimeout(resolve, readerMs));
    }
  })();
  await vi.advanceTimersByTimeAsync(n * Math.max(intervalSeconds * 1000, readerMs) * 2);
  await reading;
  return times;
}

test("the first sample at once, then one per interval: a reader's delay does not add up", async () => {
  expect(await arrivals(5, 0)).toEqual([0, 1000, 2000, 3000, 4000]);
  // 300 ms with each sample: still on the schedule (the delay, counted from each hand-over, would make it 0, 1300, 2600, …).
  expect(await arrivals(5, 300)).toEqual([0, 1000, 2000, 3000, 4000]);
  expect(await arrivals(3, 300, 5)).toEqual([0, 5000, 10000]);
});

test("a reader slower than the interval skips the slots it missed: no burst to catch up", async () => {
  expect(await arrivals(4, 1500)).toEqual([0, 2000, 4000, 6000]);
  expect(await arrivals(3, 2000)).toEqual([0, 3000, 6000]);
});
