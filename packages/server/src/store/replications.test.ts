// The replication store on a real control plane: start options.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ConnectionInfoSchema, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { controlPlanePerFile } from "../testing/control-plane";
import { ReplicationStore } from "./replications";

const cp = controlPlanePerFile();

test("clearStartPosition forgets an explicit start position and keeps the other start options", async () => {
  const replications = new ReplicationStore(cp().pool);
  const inserted = await replications.insert({
    id: randomUUID(),
    tenantId: "tenant-123",
    source: create(ConnectionInfoSchema, { connectionId: randomUUID(), database: "production_db" }),
    target: create(ConnectionInfoSchema, { connectionId: randomUUID(), database: "replica_db" }),
    config: create(ReplicationConfigSchema, {}),
    desired: "created",
    status: "Initializing",
    estimatedDataSizeGb: null,
    estimatedInitialSyncDurationHours: null,
  });
  if (!inserted) throw new Error("not inserted");
  await replications.setDesired(inserted.id, "running", "Initializing", { fromCheckpoint: "0/16B3748", initialSyncParallelism: 4 });
  expect((await replications.get(inserted.id))?.startOptions).toEqual({ fromCheckpoint: "0/16B3748", initialSyncParallelism: 4 });
  await replications.clearStartPosition(inserted.id);
  expect((await replications.get(inserted.id))?.startOptions).toEqual({ initialSyncParallelism: 4 });
});
