// A pause (or a shutdown) that comes while a start is still opening its
// sessions must not leave any behind: a walsender left open keeps the slot
// active, and the next start of the replication — here or on another
// server — is then refused ("replication slot is active").
import { afterAll, beforeAll, expect, test } from "vitest";
import { startBench, type Bench } from "./testing/replication";
import { waitFor } from "./testing/tenant";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

test("a pause at any moment of a start leaves no walsender, and the next start streams", async () => {
  const r = await bench.replicate({});
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  await r.pipeline.pause({ watch: false });
  const observer = await bench.source.connect(r.name);
  try {
    const walsenders = async () =>
      (await observer.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name = $1", [r.pipeline.slotName])).rows[0]!.n;
    // Pauses from the start's first step to its last (the stream opens after the target's setup).
    for (const delayMs of [0, 0, 1, 2, 5, 10, 20, 40, 80]) {
      await r.pipeline.start();
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      await r.pipeline.pause({ watch: false });
      // The walsender ends as its session does (PostgreSQL notices the closed socket at once).
      await waitFor(async () => (await walsenders()) === 0, `no walsender after a pause ${delayMs} ms into a start`, 5_000);
    }
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'after the races' FROM generate_series(1, 100) i");
    await r.caughtUp();
    expect(r.pipeline.status).toBe("Streaming");
  } finally {
    await observer.end();
  }
}, 120_000);
