// Jobs on a real control plane: leases with a growing epoch, every record of
// a running job fenced by its lease, step records timed by the database, and
// a cancel that never crosses the beginning of a step that cannot be
// cancelled.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { JobStore, type Lease, type StepPlan } from "./jobs";

let cp: ControlPlane;
let jobs: JobStore;
const STEPS: StepPlan[] = [
  { step: "copy", rerunnable: true, cancellable: true },
  { step: "cutover", rerunnable: false, cancellable: false },
];
const KINDS = ["test.store"];
const expire = (id: string) => cp.pool.query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [id]);

beforeAll(async () => {
  cp = await startControlPlane();
  jobs = new JobStore(cp.pool);
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

async function created(): Promise<string> {
  const row = await jobs.insert({ id: randomUUID(), kind: "test.store", steps: STEPS, state: { input: 1 } });
  expect(row).toMatchObject({ status: "Pending", cancellable: true, lease: null, state: { input: 1 } });
  expect(row.steps.map((s) => [s.step, s.status, s.attempts])).toEqual([["copy", "Pending", 0], ["cutover", "Pending", 0]]);
  return row.id;
}

async function held(id: string, owner: string): Promise<Lease> {
  const row = await jobs.acquire(id, owner, 15, KINDS);
  expect(row?.lease?.owner).toBe(owner);
  return { owner, epoch: row!.lease!.epoch };
}

test("a lease: one holder at a time, taken over once expired with a new epoch, after which the old holder can record nothing", async () => {
  const id = await created();
  expect(await jobs.acquire(id, "a", 15, ["another.kind"])).toBeUndefined();
  const a = await held(id, "a");
  expect(await jobs.acquire(id, "b", 15, KINDS)).toBeUndefined();
  // The holder taking it again keeps its epoch.
  expect((await held(id, "a")).epoch).toBe(a.epoch);
  expect(await jobs.claimable(KINDS, 100)).not.toContain(id);
  await expire(id);
  expect(await jobs.claimable(KINDS, 100)).toContain(id);
  const b = await held(id, "b");
  expect(b.epoch).toBe(a.epoch + 1);
  expect(await jobs.renew([{ id, epoch: a.epoch }], "a", 15)).toEqual([]);
  expect(await jobs.begin(id, a, 0, true)).toBeUndefined();
  expect(await jobs.save(id, a, { by: "a" })).toBeUndefined();
  await jobs.release(id, a);
  expect((await jobs.get(id))!.lease?.owner).toBe("b");
  expect(await jobs.renew([{ id, epoch: b.epoch }], "b", 15)).toEqual([{ id, cancel: false }]);
  expect((await jobs.begin(id, b, 0, true))?.steps[0]).toMatchObject({ status: "InProgress", attempts: 1 });
  await jobs.release(id, b);
  expect((await jobs.get(id))!.lease).toBeNull();
  // Released: free for anyone at once, and a new holder moves the epoch on.
  expect((await held(id, "a")).epoch).toBe(b.epoch + 1);
});

test("step records: begun, ended with the database's duration, outputs and details kept, attempts counted", async () => {
  const id = await created();
  const lease = await held(id, "a");
  const begun = (await jobs.begin(id, lease, 0, true))!;
  expect(begun.status).toBe("InProgress");
  expect(begun.startedAt).not.toBeNull();
  await jobs.save(id, lease, { lsn: "0/16B3748" });
  await jobs.report(id, lease, 0, { progress_percent: 50 });
  await jobs.report(id, lease, 0, { data_size_gb: 1.5 });
  // Begun again (a second attempt after an interruption).
  expect((await jobs.begin(id, lease, 0, true))!.steps[0]!.attempts).toBe(2);
  const ended = (await jobs.finish(id, lease, 0, "Completed"))!;
  const copy = ended.steps[0]!;
  expect(copy).toMatchObject({ status: "Completed", attempts: 2, error: null, details: { progress_percent: 50, data_size_gb: 1.5 } });
  expect(copy.durationMs).toBeGreaterThanOrEqual(0);
  expect(copy.completedAt!.getTime()).toBeGreaterThanOrEqual(copy.startedAt!.getTime());
  expect(ended.state).toEqual({ input: 1, lsn: "0/16B3748" });
  await jobs.begin(id, lease, 1, false);
  const failed = (await jobs.finish(id, lease, 1, "Failed", "the target refused"))!;
  expect(failed.steps[1]).toMatchObject({ status: "Failed", error: "the target refused" });
  await jobs.startRollback(id, lease, "cutover: the target refused");
  await jobs.rollbackStep(id, lease, 1, "begin");
  const rolled = (await jobs.rollbackStep(id, lease, 1, "done"))!;
  expect(rolled.steps[1]).toMatchObject({ status: "RolledBack", error: "the target refused" });
  expect(rolled.steps[1]!.rolledBackAt!.getTime()).toBeGreaterThanOrEqual(rolled.steps[1]!.rollbackStartedAt!.getTime());
  const done = (await jobs.end(id, lease, "RolledBack", "Completed"))!;
  expect(done).toMatchObject({ status: "RolledBack", rollbackStatus: "Completed", error: "cutover: the target refused", lease: null });
  expect(done.completedAt).not.toBeNull();
  // Ended: nothing more is recorded, and nobody takes it.
  expect(await jobs.save(id, lease, { late: true })).toBeUndefined();
  expect(await jobs.acquire(id, "b", 15, KINDS)).toBeUndefined();
});

test("cancel: accepted until a step that cannot be cancelled begins, then refused; a cancelled job begins no step", async () => {
  const early = await created();
  const a = await held(early, "a");
  await jobs.begin(early, a, 0, true);
  expect(await jobs.requestCancel(early)).toBe("cancelling");
  expect(await jobs.requestCancel(early)).toBe("cancelling");
  expect(await jobs.begin(early, a, 1, false)).toBeUndefined();
  expect((await jobs.renew([{ id: early, epoch: a.epoch }], "a", 15))[0]!.cancel).toBe(true);

  const late = await created();
  const b = await held(late, "b");
  await jobs.begin(late, b, 0, true);
  await jobs.finish(late, b, 0, "Completed");
  await jobs.begin(late, b, 1, false);
  expect(await jobs.requestCancel(late)).toBe("refused");
  await jobs.finish(late, b, 1, "Completed");
  await jobs.end(late, b, "Completed", null);
  expect(await jobs.requestCancel(late)).toBe("ended");
  expect(await jobs.requestCancel(randomUUID())).toBe("not_found");

  // Rolling back after a failure: a cancel changes nothing.
  const failing = await created();
  const c = await held(failing, "c");
  await jobs.begin(failing, c, 0, true);
  await jobs.finish(failing, c, 0, "Failed", "boom");
  await jobs.startRollback(failing, c, "copy: boom");
  expect(await jobs.requestCancel(failing)).toBe("ended");
});

test("a cancel and the beginning of a step that cannot be cancelled, sent together: exactly one of them takes effect", async () => {
  const outcomes = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const id = await created();
      const lease = await held(id, "a");
      await jobs.begin(id, lease, 0, true);
      await jobs.finish(id, lease, 0, "Completed");
      const [begun, cancel] = await Promise.all([jobs.begin(id, lease, 1, false), jobs.requestCancel(id)]);
      return `${begun ? "begun" : "not begun"}/${cancel}`;
    }),
  );
  for (const o of outcomes) expect(["begun/refused", "not begun/cancelling"]).toContain(o);
});
