// A replication engine in a process of its own, for tests that kill it.
// Reads its spec from HELIOSDB_RUNNER_SPEC (JSON), prints one JSON line per
// event and per second of figures, and runs until killed.
import { fromJson } from "@bufbuild/protobuf";
import { ReplicationConfigSchema } from "@heliosdb/replication-proto";
import { MasterKeyProvider, ReplicationPipeline } from "../index";

interface RunnerSpec {
  replicationId: string;
  tenantId: string;
  source: string;
  target: string;
  /** ReplicationConfig in proto3 JSON. */
  config: unknown;
  masterKey: string;
  parallelism?: number;
}

const spec = JSON.parse(process.env.HELIOSDB_RUNNER_SPEC!) as RunnerSpec;
const print = (line: object) => process.stdout.write(`${JSON.stringify(line, (_, v) => (typeof v === "bigint" ? v.toString() : v))}\n`);
const pipeline = new ReplicationPipeline(
  {
    replicationId: spec.replicationId,
    tenantId: spec.tenantId,
    source: { connection: { connectionString: spec.source }, schema: "public" },
    target: { connection: { connectionString: spec.target }, schema: "public" },
    config: fromJson(ReplicationConfigSchema, spec.config as never),
  },
  { keys: MasterKeyProvider.fromString(spec.masterKey), onEvent: (event) => print({ event }), heartbeatIntervalMs: 200 },
);
setInterval(() => print({ figures: pipeline.read() }), 100);
pipeline
  .start({ initialSyncParallelism: spec.parallelism ?? 2 })
  .then(() => pipeline.whenStreaming())
  .then(() => print({ streaming: true }))
  .catch((e: unknown) => {
    print({ failed: String(e) });
    process.exit(1);
  });
