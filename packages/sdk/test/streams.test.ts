// ResumableStream's own logic, on connections the test makes up: it
// reconnects after the backoff and resumes from what it delivered; gives up
// on a verdict, or after maxAttempts connections in a row without an item;
// `break` and abort() cancel the connection; the emitter face as §9.1 uses it.
import { expect, test } from "vitest";
import { ConnectionError, NotFoundError, ResumableStream, type ReconnectInfo } from "../src/core/index";

const dropped = () => new ConnectionError({ code: "CONNECTION_ERROR", message: "connection reset" });

/** Connections that each deliver the next numbers from `after` and then fail as `plan` says. */
function source(plan: ("drop" | "gone" | "end")[], perConnection = 3) {
  const opened: { after: number; signal: AbortSignal }[] = [];
  let after = 0;
  const open = (signal: AbortSignal) => {
    const how = plan[opened.length] ?? "drop";
    opened.push({ after, signal });
    const start = after;
    return (async function* () {
      for (let i = 1; i <= perConnection; i++) yield start + i;
      if (how === "gone") throw new NotFoundError({ code: "NOT_FOUND", message: "no replication" });
      if (how === "drop") throw dropped();
    })();
  };
  return { opened, open, track: (n: number) => void (after = n) };
}

const instant = { sleep: async () => undefined, random: () => 1 };

test("reconnects after a drop (and after the server ends the call), resuming after the last item delivered; a verdict ends it", async () => {
  const s = source(["drop", "end", "gone"]);
  const stream = new ResumableStream(s.open, instant, s.track);
  const reconnects: ReconnectInfo[] = [];
  const errors: unknown[] = [];
  let ended = 0;
  stream.on("reconnect", (r) => reconnects.push(r)).on("error", (e) => errors.push(e)).on("end", () => ended++);
  const got: number[] = [];
  await expect(
    (async () => {
      for await (const n of stream) got.push(n);
    })(),
  ).rejects.toBeInstanceOf(NotFoundError);
  expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(s.opened.map((o) => o.after)).toEqual([0, 3, 6]);
  // Each connection delivered something: every reconnect is the first of its run, after the first backoff step.
  expect(reconnects.map((r) => [r.attempt, r.delayMs])).toEqual([[1, 1000], [1, 1000]]);
  expect(errors).toHaveLength(1);
  expect(ended).toBe(1);
});

test("gives up after maxAttempts connections in a row that delivered nothing, with the backoff growing between them", async () => {
  const waits: number[] = [];
  const stream = new ResumableStream(() => (async function* () {
    throw dropped();
  })() as AsyncIterable<number>, { policy: { maxAttempts: 4, baseDelayMs: 1000, maxDelayMs: 60_000 }, random: () => 1, sleep: async (ms) => void waits.push(ms) });
  await expect(
    (async () => {
      for await (const _ of stream);
    })(),
  ).rejects.toBeInstanceOf(ConnectionError);
  expect(waits).toEqual([1000, 2000, 4000]);
});

test("break and abort() cancel the connection and end the stream", async () => {
  const s = source(["drop"], 100);
  const stream = new ResumableStream(s.open, instant, s.track);
  for await (const n of stream) if (n === 2) break;
  expect(s.opened[0]!.signal.aborted).toBe(true);
  expect(() => stream[Symbol.asyncIterator]()).toThrow(/already being read/);

  let ended = false;
  const waiting = new ResumableStream<number>((signal) => (async function* () {
    yield 1;
    await new Promise((resolve) => signal.addEventListener("abort", resolve));
  })(), instant);
  const got: number[] = [];
  waiting.on("data", (n) => got.push(n)).on("end", () => (ended = true));
  await new Promise((r) => setTimeout(r, 20));
  waiting.abort();
  await new Promise((r) => setTimeout(r, 20));
  expect(got).toEqual([1]);
  expect(ended).toBe(true);
});
