// toRestJson writes in one pass what JSON.stringify(toRest(...)) writes:
// held to the same bytes on every example of the spec and on the values
// that take a rule of their own.
import { create, type DescMessage } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { HealthResponseSchema } from "../gen/heliosdb/replication/v1/health_pb";
import { ConnectionSchema, DatabaseEngine } from "../gen/heliosdb/replication/v1/connection_pb";
import { ListReplicationsRequestSchema, ReplicationSchema, ReplicationStatus } from "../gen/heliosdb/replication/v1/replication_pb";
import { methodOf, specExamples } from "../../test/spec";
import { fromRest, toRest, toRestJson } from "./index";

const same = (schema: DescMessage, message: never) => expect(toRestJson(schema, message)).toBe(JSON.stringify(toRest(schema, message)));

describe("toRestJson is JSON.stringify(toRest(...)), byte for byte", () => {
  test("every request and response example of spec §2", () => {
    let compared = 0;
    for (const example of specExamples.filter((e) => e.kind !== "query")) {
      const method = methodOf(example.rpc);
      const schema = example.kind === "request" ? method.input : method.output;
      same(schema, fromRest(schema, example.json) as never);
      compared++;
    }
    expect(compared).toBeGreaterThan(20);
  });

  test("zero values, an unset enum, an enum number the contract does not know, non-finite doubles, 64-bit integers past 2^53", () => {
    same(ReplicationSchema, create(ReplicationSchema) as never);
    same(ReplicationSchema, create(ReplicationSchema, { status: 99 as ReplicationStatus }) as never);
    same(ConnectionSchema, create(ConnectionSchema, { engine: DatabaseEngine.UNSPECIFIED, host: "h" }) as never);
    same(ListReplicationsRequestSchema, create(ListReplicationsRequestSchema, { pageSize: 5 }) as never);
    const extremes = create(ReplicationSchema, {
      id: 'quotes " and \\ and \u2028',
      estimatedDataSizeGb: Number.NaN,
      estimatedInitialSyncDurationHours: Number.POSITIVE_INFINITY,
      replicationLagSeconds: -0,
      currentState: { replicationLagBytes: 2n ** 60n, walRetainedBytes: 42n, replicationLagSeconds: Number.NEGATIVE_INFINITY },
      statistics: { totalRowsReplicated: 2n ** 53n - 1n, totalTransactionsReplicated: 2n ** 53n + 1n },
    });
    same(ReplicationSchema, extremes as never);
  });

  test("timestamps: whole seconds, milliseconds, finer fractions, the bounds", () => {
    for (const [seconds, nanos] of [[0n, 0], [1730552400n, 0], [1730552400n, 5_000_000], [1730552400n, 120_000_000], [1730552400n, 1_500], [1730552400n, 999_999_999], [-62135596800n, 0], [253402300799n, 999_000_000]] as const) {
      same(ReplicationSchema, create(ReplicationSchema, { createdAt: { seconds, nanos } }) as never);
    }
    expect(() => toRestJson(ReplicationSchema, create(ReplicationSchema, { createdAt: { seconds: 253402300800n } }))).toThrow();
  });

  test("a map field", () => {
    same(HealthResponseSchema, create(HealthResponseSchema, { status: "Healthy", checks: { database: "Healthy", "a \"quoted\" key": "x" } }) as never);
  });
});

test("an INPUT_ONLY field (a connection's password) is read from a request and never written in an answer", () => {
  const connection = create(ConnectionSchema, { connectionId: "550e8400-e29b-41d4-a716-446655440001", host: "db.example", password: "s3cret", passwordSet: true });
  expect(toRest(ConnectionSchema, connection)).not.toHaveProperty("password");
  expect(toRest(ConnectionSchema, create(ConnectionSchema, {}))).not.toHaveProperty("password");
  expect(JSON.parse(toRestJson(ConnectionSchema, connection))).toEqual({ ...toRest(ConnectionSchema, connection) });
  expect(toRestJson(ConnectionSchema, connection)).not.toContain("s3cret");
  expect(fromRest(ConnectionSchema, { host: "db.example", password: "s3cret" }).password).toBe("s3cret");
});
