// The health check's probes of the control plane: they pass against a live
// database and fail against one that cannot answer.
import { expect, test } from "vitest";
import { controlPlanePerFile } from "../testing/control-plane";
import { createPool } from "./db";
import { HealthProbes } from "./health-probes";

const cp = controlPlanePerFile();

test("the database and the event log answer", async () => {
  const probes = new HealthProbes(cp().pool);
  await expect(probes.database()).resolves.toBeUndefined();
  await expect(probes.eventLog()).resolves.toBeUndefined();
});

test("a database that does not exist fails both; one without the event log fails that probe", async () => {
  const missing = createPool(cp().url("no_such_db"));
  try {
    const probes = new HealthProbes(missing);
    await expect(probes.database()).rejects.toThrow(/does not exist/);
    await expect(probes.eventLog()).rejects.toThrow(/does not exist/);
  } finally {
    await missing.end();
  }
  // The cluster's own database: reachable, but no migrations ran there.
  const bare = createPool(cp().url("postgres"));
  try {
    const probes = new HealthProbes(bare);
    await expect(probes.database()).resolves.toBeUndefined();
    await expect(probes.eventLog()).rejects.toThrow(/relation "events" does not exist/);
  } finally {
    await bare.end();
  }
});
