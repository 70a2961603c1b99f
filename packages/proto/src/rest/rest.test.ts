import { create, getOption, hasOption, type DescMessage } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { rest_tag } from "../gen/heliosdb/replication/v1/rest_pb";
import { StartMigrationRequestSchema } from "../gen/heliosdb/replication/v1/migration_pb";
import {
  CheckpointSchema,
  CreateReplicationRequestSchema,
  ListReplicationsRequestSchema,
  PauseReplicationResponseSchema,
  QoSTier,
  ReplicationStatus,
  StreamEventsRequestSchema,
  UpdateReplicationRequestSchema,
} from "../gen/heliosdb/replication/v1/replication_pb";
import { SortOrder } from "../gen/heliosdb/replication/v1/common_pb";
import { registry } from "../../test/spec";
import { RegisterConnectionRequestSchema, DatabaseEngine } from "../gen/heliosdb/replication/v1/connection_pb";
import { fromRest, restBodyPaths, restEnumValues, restQueryToJson, RestMappingError, restUnion, toRest, toRestRequest } from "./index";

// The violations fromRest reports for a body, as "field: description".
function violations(json: unknown, schema: DescMessage = CreateReplicationRequestSchema): string[] {
  try {
    fromRest(schema, json);
  } catch (e) {
    expect(e).toBeInstanceOf(RestMappingError);
    return (e as RestMappingError).violations.map((v) => `${v.field}: ${v.description}`);
  }
  throw new Error("fromRest accepted the body");
}

describe("fromRest refuses what does not fit, naming the field", () => {
  test("unknown fields, at any depth", () => {
    expect(violations({ tenant_id: "t", source: { connection_idx: "x" }, extra: 1 })).toEqual([
      "source.connection_idx: unknown field",
      "extra: unknown field",
    ]);
  });

  test("unknown enum values, listing the allowed ones; proto names are not the spec's form", () => {
    expect(violations({ config: { qos_tier: "Gold" } })).toEqual([
      'config.qos_tier: unknown value "Gold"; expected one of BestEffort, Standard, Premium, Synchronous',
    ]);
    expect(violations({ config: { qos_tier: "PREMIUM" } })).toHaveLength(1);
    expect(violations({ config: { compression: { level: 2 } } })).toEqual([
      "config.compression.level: unknown value 2; expected one of Low, Medium, High",
    ]);
  });

  test("wrong JSON types and ranges, all reported at once", () => {
    expect(
      violations({
        tenant_id: 123,
        config: {
          max_lag_seconds: "5",
          priority: 2 ** 31,
          table_filter: "users.*",
          row_filter: { enabled: "yes" },
        },
      }),
    ).toEqual([
      "tenant_id: expected a string, got 123",
      'config.max_lag_seconds: expected an integer, got "5"',
      "config.priority: out of range (-2147483648 to 2147483647), got 2147483648",
      'config.table_filter: expected a JSON array, got "users.*"',
      'config.row_filter.enabled: expected true or false, got "yes"',
    ]);
  });

  test("a body that is not an object", () => {
    expect(violations([1])).toEqual([": expected a JSON object, got an array"]);
    expect(violations("x")).toEqual([': expected a JSON object, got "x"']);
  });

  test("tagged unions: unknown type, a config without a type, a bad field inside", () => {
    expect(
      violations({
        config: {
          transforms: [
            { type: "Encrypt", config: {} },
            { config: { columns: ["email"] } },
            { type: "AnonymizePII", config: { colums: ["email"], method: "Hash" } },
          ],
        },
      }),
    ).toEqual([
      'config.transforms[0].type: unknown value "Encrypt"; expected one of AnonymizePII, Aggregate, Filter, CompressColumns',
      "config.transforms[1].type: missing: it says what the value is",
      "config.transforms[2].config.colums: unknown field",
    ]);
  });

  test("64-bit integers beyond 2^53 must come as strings", () => {
    expect(violations({ lsn: 1e20 }, CheckpointSchema)).toEqual([
      "lsn: too large for a JSON number: send it as a decimal string, got 100000000000000000000",
    ]);
    expect(fromRest(CheckpointSchema, { lsn: "18446744073709551" }).lsn).toBe(18446744073709551n);
    expect(violations({ lsn: "9223372036854775808" }, CheckpointSchema)).toEqual([
      'lsn: out of range for a 64-bit integer, got "9223372036854775808"',
    ]);
  });

  test("timestamps are RFC 3339", () => {
    expect(violations({ paused_at: "yesterday" }, PauseReplicationResponseSchema)).toEqual([
      'paused_at: expected an RFC 3339 timestamp such as 2025-11-02T10:00:00Z, got "yesterday"',
    ]);
  });

  test("a field with a json_name answers only to it (migration_config, not config)", () => {
    expect(violations({ config: {} }, StartMigrationRequestSchema)).toEqual(["config: unknown field"]);
    expect(fromRest(StartMigrationRequestSchema, { migration_config: { bulk_copy_parallelism: 8 } }).config)
      .toMatchObject({ bulkCopyParallelism: 8 });
  });
});

describe("toRest", () => {
  test("64-bit integers are JSON numbers while exact, strings beyond 2^53", () => {
    expect(toRest(CheckpointSchema, create(CheckpointSchema, { lsn: 5368709120n }))).toMatchObject({ lsn: 5368709120 });
    expect(toRest(CheckpointSchema, create(CheckpointSchema, { lsn: 2n ** 60n }))).toMatchObject({
      lsn: "1152921504606846976",
    });
  });

  test("presence: an unset optional filter is absent, a zero-valued one is written", () => {
    const unset = create(ListReplicationsRequestSchema, {});
    expect(toRest(ListReplicationsRequestSchema, unset)).not.toHaveProperty("status");
    const zero = create(ListReplicationsRequestSchema, { status: ReplicationStatus.INITIALIZING });
    expect(toRest(ListReplicationsRequestSchema, zero)).toMatchObject({ status: "Initializing" });
    expect(fromRest(ListReplicationsRequestSchema, { qos_tier: "BestEffort" }).qosTier).toBe(QoSTier.BEST_EFFORT);
    expect(fromRest(ListReplicationsRequestSchema, {}).qosTier).toBeUndefined();
  });

  test("an _UNSPECIFIED enum value is absent; rest_value spellings are used both ways", () => {
    expect(toRest(ListReplicationsRequestSchema, create(ListReplicationsRequestSchema))).not.toHaveProperty("sort_order");
    const asc = fromRest(ListReplicationsRequestSchema, { sort_order: "asc" });
    expect(asc.sortOrder).toBe(SortOrder.ASC);
    expect(toRest(ListReplicationsRequestSchema, asc)).toMatchObject({ sort_order: "asc" });
    expect(violations({ sort_order: "Asc" }, ListReplicationsRequestSchema)).toHaveLength(1);
  });
});

describe("restQueryToJson", () => {
  const schema = ListReplicationsRequestSchema;
  const parse = (query: string) => fromRest(schema, restQueryToJson(schema, new URLSearchParams(query)));

  test("types values by their field", () => {
    expect(parse("tenant_id=tenant-123&page=2&page_size=100&sort_order=asc")).toMatchObject({
      tenantId: "tenant-123",
      page: 2,
      pageSize: 100,
      sortOrder: SortOrder.ASC,
    });
  });

  test("repeated fields take the parameter once per element", () => {
    const params = new URLSearchParams("severities=Error&severities=Critical");
    expect(restQueryToJson(StreamEventsRequestSchema, params)).toEqual({ severities: ["Error", "Critical"] });
  });

  test("bad values are reported by fromRest with the field's name", () => {
    expect(() => parse("page=abc")).toThrow('page: expected an integer, got "abc"');
    expect(() => parse("status=Running")).toThrow(/status: unknown value "Running"/);
  });

  test("unknown, repeated-scalar and non-leaf parameters are refused", () => {
    expect(() => restQueryToJson(schema, new URLSearchParams("pagesize=1"))).toThrow("pagesize: unknown query parameter");
    expect(() => restQueryToJson(schema, new URLSearchParams("page=1&page=2"))).toThrow("page: given more than once");
    expect(() => restQueryToJson(CreateReplicationRequestSchema, new URLSearchParams("source=x"))).toThrow(
      "source: not a field that a query parameter can set",
    );
    expect(restQueryToJson(CreateReplicationRequestSchema, new URLSearchParams("source.region=eu"))).toEqual({
      source: { region: "eu" },
    });
  });
});

describe("restBodyPaths: PATCH updates exactly the fields present", () => {
  const schema = UpdateReplicationRequestSchema;
  test("the spec's §2.1.4 body", () => {
    const body = { config: { qos_tier: "Premium", max_lag_seconds: 3, priority: 95, table_filter: ["users.*"] } };
    expect(restBodyPaths(schema, body)).toEqual([
      "config.qos_tier",
      "config.max_lag_seconds",
      "config.priority",
      "config.table_filter",
    ]);
  });
  test("nested messages are walked; {} adds nothing; null clears", () => {
    expect(restBodyPaths(schema, { config: { row_filter: { enabled: true } } })).toEqual(["config.row_filter.enabled"]);
    expect(restBodyPaths(schema, { config: {} })).toEqual([]);
    expect(restBodyPaths(schema, { config: null })).toEqual(["config"]);
    expect(restBodyPaths(schema, { config: { transforms: [] } })).toEqual(["config.transforms"]);
  });
});

describe("the REST names of the whole contract", () => {
  test("every enum's REST spellings are distinct", () => {
    for (const type of registry) {
      if (type.kind !== "enum") continue;
      const names = restEnumValues(type.values);
      expect(new Set(names).size, type.typeName).toBe(names.length);
    }
  });

  test("every member of a tagged union has a distinct tag", () => {
    for (const type of registry) {
      if (type.kind !== "message") continue;
      for (const oneof of type.oneofs.filter((o) => restUnion(o))) {
        const tags = oneof.fields.map((f) => (hasOption(f, rest_tag) ? getOption(f, rest_tag) : undefined));
        expect(tags.every((t) => t), `${type.typeName}.${oneof.name}`).toBe(true);
        expect(new Set(tags).size).toBe(tags.length);
      }
    }
  });
});

describe("toRestRequest: a request as a client sends it", () => {
  test("keeps the INPUT_ONLY fields an answer never carries, and writes only the fields that are set", () => {
    const request = create(RegisterConnectionRequestSchema, { connection: { connectionId: "c1", host: "db", port: 5432, password: "s3cret", engine: DatabaseEngine.POSTGRESQL } });
    const sent = toRestRequest(RegisterConnectionRequestSchema, request);
    expect(sent).toEqual({ connection: { connection_id: "c1", host: "db", port: 5432, password: "s3cret", engine: "PostgreSQL" } });
    // The answer writer drops the password (and writes every field).
    const answer = toRest(RegisterConnectionRequestSchema, request) as { connection: Record<string, unknown> };
    expect(answer.connection.password).toBeUndefined();
    expect(answer.connection.region).toBe("");
    // Read back by the server's reader: the same message.
    expect(fromRest(RegisterConnectionRequestSchema, sent)).toEqual(request);
  });
});
