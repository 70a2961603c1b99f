import { expect, test } from "vitest";
import { WorkerPool } from "./worker-pool";

test("when workers are scarce, the highest priority runs first, then the earliest", async () => {
  const pool = new WorkerPool(1);
  const started: string[] = [];
  let release!: () => void;
  const first = pool.run(0, async () => {
    started.push("first");
    await new Promise<void>((r) => (release = r));
  });
  const rest = [
    pool.run(10, async () => void started.push("p10")),
    pool.run(90, async () => void started.push("p90")),
    pool.run(50, async () => void started.push("p50a")),
    pool.run(50, async () => void started.push("p50b")),
  ];
  expect(pool.queued).toBe(4);
  release();
  await Promise.all([first, ...rest]);
  expect(started).toEqual(["first", "p90", "p50a", "p50b", "p10"]);
  expect(pool.queued).toBe(0);
});

test("a failing task frees its worker", async () => {
  const pool = new WorkerPool(1);
  await expect(pool.run(1, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
  await expect(pool.run(1, async () => "ok")).resolves.toBe("ok");
});
