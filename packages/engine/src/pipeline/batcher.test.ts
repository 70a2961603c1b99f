// The batcher alone, with an applier that records what it is given: a fence's
// transaction is applied at once, with whatever waited for the tier's
// interval before it — the cutover's drain waits for nothing else — and
// `caughtUp` says when everything received is applied and acknowledged.
import { expect, test } from "vitest";
import type { Applier } from "../apply/applier";
import type { ChangeBatch } from "../codec/batch";
import { FENCE_MESSAGE_PREFIX } from "../cutover/fence";
import { MARK_MESSAGE_PREFIX } from "../cutover/mark";
import type { Relation, TransactionInfo } from "../types";
import { Batcher, READ_AHEAD_BATCHES } from "./batcher";
import { Figures } from "./figures";

const relation: Relation = { oid: 1, schema: "public", table: "t", columns: [], replicaIdentity: "d" };

/** A batcher over `applier`, whose acknowledgements are recorded. */
function batcherOver(applier: Pick<Applier, "apply">, flushIntervalMs: number, onError: (e: unknown) => void) {
  const acknowledged: bigint[] = [];
  const b = new Batcher({
    applier: applier as Applier,
    settings: () => ({ batchRows: 10_000, flushIntervalMs, coalesceMs: 0, ackIntervalMs: 0 }),
    figures: new Figures(() => ({}) as never, () => undefined),
    transformFor: () => undefined,
    onRelation: async (r) => r,
    carries: () => true,
    beforeApply: async () => undefined,
    acknowledge: (lsn) => acknowledged.push(lsn),
    onError,
  });
  return { b, acknowledged };
}

const lastCommit = (batch: ChangeBatch) =>
  (batch.items.filter((i) => i.kind === "commit").at(-1) as { transaction: TransactionInfo } | undefined)?.transaction;

function batcher(flushIntervalMs: number) {
  const applied: ChangeBatch[] = [];
  const { b, acknowledged } = batcherOver(
    {
      async apply(batch: ChangeBatch) {
        applied.push(batch);
        return lastCommit(batch);
      },
    },
    flushIntervalMs,
    (e) => {
      throw e;
    },
  );
  return { b, applied, acknowledged };
}

const transaction = async (b: Batcher, xid: number, endLsn: bigint, fence: string | false = false) => {
  await b.onMessage({ tag: "begin", xid, finalLsn: endLsn - 1n, commitTime: new Date() } as never);
  await b.onMessage({ tag: "change", change: { kind: "insert", relation, newRow: [] as never } });
  if (fence) await b.onMessage({ tag: "message", transactional: true, lsn: endLsn - 2n, prefix: fence, content: Buffer.from("f") });
  await b.onMessage({ tag: "commit", commitLsn: endLsn - 1n, endLsn, commitTime: new Date() } as never);
};

test("a fence's (or a mark's) transaction is applied at once, with what waited before it; until then nothing is caught up", async () => {
  const { b, applied, acknowledged } = batcher(3_600_000);
  await b.onMessage({ tag: "relation", relation });
  expect(b.caughtUp).toBe(true);
  await transaction(b, 1, 100n);
  await transaction(b, 2, 200n);
  // Gathered for the tier's interval (an hour here): nothing applied, so not caught up.
  expect(applied).toHaveLength(0);
  expect(b.caughtUp).toBe(false);
  await transaction(b, 3, 300n, FENCE_MESSAGE_PREFIX);
  await b.drain();
  expect(applied).toHaveLength(1);
  expect(applied[0]!.items.filter((i) => i.kind === "commit")).toHaveLength(3);
  expect(acknowledged).toEqual([300n]);
  expect(b.caughtUp).toBe(true);
  // A transaction after it waits for the interval again.
  await transaction(b, 4, 400n);
  expect(applied).toHaveLength(1);
  expect(b.caughtUp).toBe(false);
  // A catch-up mark's transaction too; a message of another prefix is not.
  await transaction(b, 5, 500n, "someone_else");
  expect(applied).toHaveLength(1);
  await transaction(b, 6, 600n, MARK_MESSAGE_PREFIX);
  await b.drain();
  expect(applied).toHaveLength(2);
  expect(acknowledged).toEqual([300n, 600n]);
  b.discard();
});

test("half a transaction received is not caught up", async () => {
  const { b } = batcher(0);
  await b.onMessage({ tag: "relation", relation });
  await b.onMessage({ tag: "begin", xid: 9, finalLsn: 50n, commitTime: new Date() } as never);
  expect(b.caughtUp).toBe(false);
  await b.onMessage({ tag: "commit", commitLsn: 50n, endLsn: 51n, commitTime: new Date() } as never);
  await b.drain();
  expect(b.caughtUp).toBe(true);
});

// An applier whose every apply waits until the test lets it go, recording order. Every commit is flushed at once:
// one batch per transaction.
function gatedBatcher(onError: (e: unknown) => void = () => undefined) {
  const started: bigint[] = [];
  const gates: { release: () => void; fail: (e: Error) => void }[] = [];
  const applier = {
    apply(batch: ChangeBatch): Promise<TransactionInfo | undefined> {
      started.push(batch.sequence);
      return new Promise((resolve, reject) => gates.push({ release: () => resolve(lastCommit(batch)), fail: reject }));
    },
  };
  return { ...batcherOver(applier, 0, onError), started, gates };
}

const settled = async <T>(p: Promise<T>) => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return done;
};

test("the stream reads on while a batch applies, up to READ_AHEAD_BATCHES cut and unapplied; batches apply one at a time, in order", async () => {
  const { b, started, gates, acknowledged } = gatedBatcher();
  await b.onMessage({ tag: "relation", relation });
  // The first batch applies and hangs there; up to the bound, the next ones are cut, sealed and opened, and wait their turn.
  for (let i = 1; i <= READ_AHEAD_BATCHES; i++) await transaction(b, i, BigInt(100 * i));
  await settled(Promise.resolve());
  expect(started).toEqual([0n]);
  // One more batch than the bound: the stream waits (the commit's flush does not settle) until the first applies.
  const next = transaction(b, 99, 9_900n);
  expect(await settled(next)).toBe(false);
  gates[0]!.release();
  expect(await settled(next)).toBe(true);
  expect(started).toEqual([0n, 1n]);
  // The rest, released in turn, apply in order and are acknowledged in order.
  for (let i = 1; i <= READ_AHEAD_BATCHES; i++) {
    gates[i]!.release();
    await settled(Promise.resolve());
  }
  await b.drain();
  const batches = READ_AHEAD_BATCHES + 1;
  expect(started).toEqual(Array.from({ length: batches }, (_, i) => BigInt(i)));
  expect(acknowledged).toEqual([...Array.from({ length: READ_AHEAD_BATCHES }, (_, i) => BigInt(100 * (i + 1))), 9_900n]);
  expect(b.caughtUp).toBe(true);
});

test("after a batch fails, the batches behind it are not applied, and the stream's flushes fail", async () => {
  const errors: unknown[] = [];
  const { b, started, gates, acknowledged } = gatedBatcher((e) => errors.push(e));
  await b.onMessage({ tag: "relation", relation });
  for (let i = 1; i <= READ_AHEAD_BATCHES; i++) await transaction(b, i, BigInt(100 * i));
  // Past the bound: this one waits for the first batch, which fails.
  const waiting = transaction(b, 99, 9_900n);
  gates[0]!.fail(new Error("target gone"));
  await expect(waiting).rejects.toThrow("target gone");
  await b.drain();
  expect(started).toEqual([0n]);
  expect(acknowledged).toEqual([]);
  expect(errors.map((e) => (e as Error).message)).toEqual(["target gone"]);
  expect(b.caughtUp).toBe(false);
  await expect(transaction(b, 100, 10_000n)).rejects.toThrow("target gone");
});
