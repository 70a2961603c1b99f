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
import { Batcher } from "./batcher";
import { Figures } from "./figures";

const relation: Relation = { oid: 1, schema: "public", table: "t", columns: [], replicaIdentity: "d" };

function batcher(flushIntervalMs: number) {
  const applied: ChangeBatch[] = [];
  const acknowledged: bigint[] = [];
  const applier = {
    async apply(batch: ChangeBatch): Promise<TransactionInfo | undefined> {
      applied.push(batch);
      const commits = batch.items.filter((i) => i.kind === "commit");
      return commits.length ? (commits[commits.length - 1] as { transaction: TransactionInfo }).transaction : undefined;
    },
  } as unknown as Applier;
  const b = new Batcher({
    applier,
    settings: () => ({ batchRows: 10_000, flushIntervalMs, coalesceMs: 0, ackIntervalMs: 0 }),
    figures: new Figures(() => ({}) as never, () => undefined),
    transformFor: () => undefined,
    onRelation: async (r) => r,
    carries: () => true,
    beforeApply: async () => undefined,
    acknowledge: (lsn) => acknowledged.push(lsn),
    onError: (e) => {
      throw e;
    },
  });
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
