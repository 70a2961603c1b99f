// What each part of a cutover took, for the step's report (the *_ms figures of its details): measured, never
// estimated, so that a slow window says where its time went.

/** Runs f, keeping what it took (ms) under `part` in `took` (when given). */
export async function timed<T>(took: Record<string, number> | undefined, part: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    if (took) took[part] = Date.now() - t0;
  }
}
