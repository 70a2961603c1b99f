// Parts of a cutover's window that need only the fence run side by side, so
// that the window is the longest of them and not their sum. Unlike
// Promise.all, every part is let finish before the step goes on or fails: a
// rollback begun while a part still ran would not find what that part
// saves (the routing it blocked, which the rollback unblocks).

/** Like Promise.all, but settles only once every part has; then rejects with the first part's failure, if any. */
export async function sideBySide<T extends readonly unknown[] | []>(parts: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = (await Promise.allSettled(parts)) as PromiseSettledResult<unknown>[];
  for (const r of settled) if (r.status === "rejected") throw r.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
