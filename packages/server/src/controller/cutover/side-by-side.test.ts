import { setTimeout as sleep } from "node:timers/promises";
import { expect, test } from "vitest";
import { sideBySide } from "./side-by-side";

test("the parts' values in order, once every part has settled", async () => {
  const order: string[] = [];
  const part = async <T>(name: string, ms: number, value: T) => {
    await sleep(ms);
    order.push(name);
    return value;
  };
  const [a, b, c] = await sideBySide([part("a", 30, 1), part("b", 10, "two"), undefined]);
  expect([a, b, c]).toEqual([1, "two", undefined]);
  expect(order).toEqual(["b", "a"]);
});

test("a part that fails early: rejects with its failure only after the slower parts have finished (and saved what they did)", async () => {
  let saved = false;
  const slow = sleep(50).then(() => void (saved = true));
  const failing = sleep(5).then(() => {
    throw new Error("the drain timed out");
  });
  await expect(sideBySide([slow, failing])).rejects.toThrow("the drain timed out");
  expect(saved).toBe(true);
});
