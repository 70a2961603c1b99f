// readRest reads an answer into the message fromRest would give for it: held
// to fromRest on every example of spec §2 and on a message of every type of
// the contract with every field set; and what an older SDK cannot know (a
// field or enum value a newer server added) or a value of the wrong JSON
// type is skipped, never put into the message.
import { create, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { ReplicationSchema, ReplicationStatus } from "../gen/heliosdb/replication/v1/replication_pb";
import { methodOf, specExamples } from "../../test/spec";
import { services } from "../services";
import { fromRest, readRest, toRest, toRestRequest } from "./index";

const same = (schema: DescMessage, json: unknown) => expect(readRest(schema, json), schema.typeName).toEqual(fromRest(schema, json));

// A value for every field, two elements in each list, one entry in each map, each oneof's first case.
function filled(desc: DescMessage, depth = 0): Record<string, unknown> {
  const message = create(desc) as Record<string, unknown>;
  if (depth > 4 || desc.typeName.startsWith("google.protobuf.")) {
    if (desc.typeName === "google.protobuf.Timestamp") Object.assign(message, { seconds: 1730552400n, nanos: 123_456_789 });
    return message;
  }
  for (const member of desc.members) {
    const field: DescField = member.kind === "oneof" ? member.fields[0]! : member;
    const one = () => element(field, depth);
    const value = field.fieldKind === "list" ? [one(), one()] : field.fieldKind === "map" ? { "a key": one() } : one();
    if (field.oneof) message[field.oneof.localName] = { case: field.localName, value };
    else message[field.localName] = value;
  }
  return message;
}

function element(field: DescField, depth: number): unknown {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind === "map" ? field.mapKind : field.fieldKind;
  if (kind === "message") return filled(field.message!, depth + 1);
  if (kind === "enum") return field.enum!.values.at(-1)!.number;
  switch (field.scalar) {
    case ScalarType.STRING:
      return `text of ${field.name}`;
    case ScalarType.BOOL:
      return true;
    case ScalarType.BYTES:
      return new Uint8Array([1, 2, 250]);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 2.5;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return -(2n ** 60n);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return 2n ** 60n;
    default:
      return 7;
  }
}

describe("readRest gives what fromRest gives", () => {
  test("every request and response example of spec §2", () => {
    let compared = 0;
    for (const example of specExamples.filter((e) => e.kind !== "query")) {
      const method = methodOf(example.rpc);
      same(example.kind === "request" ? method.input : method.output, example.json);
      compared++;
    }
    expect(compared).toBeGreaterThan(20);
  });

  test("a message of every request and answer type of the contract, every field set, as the server and the SDK write them", () => {
    let compared = 0;
    for (const service of services) {
      for (const method of service.methods) {
        for (const schema of [method.input, method.output]) {
          const message = filled(schema) as never;
          same(schema, JSON.parse(JSON.stringify(toRest(schema, message))));
          same(schema, JSON.parse(JSON.stringify(toRestRequest(schema, message))));
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(80);
  });
});

test("a field or an enum value it does not know is skipped, and so is a value of the wrong JSON type", () => {
  const json = toRest(ReplicationSchema, create(ReplicationSchema, { id: "r1", status: ReplicationStatus.STREAMING, replicationLagSeconds: 1.5 })) as Record<string, unknown>;
  const read = readRest(ReplicationSchema, { ...json, added_by_a_newer_server: { x: 1 }, status: "Hibernating" });
  expect(read.id).toBe("r1");
  expect(read.replicationLagSeconds).toBe(1.5);
  expect(read.status).toBe(create(ReplicationSchema).status); // unset
  const wrong = readRest(ReplicationSchema, { id: 5, replication_lag_seconds: "fast", created_at: "yesterday", statistics: [1] });
  expect(wrong).toEqual(create(ReplicationSchema));
});

test("timestamps with whole seconds, milliseconds and nanoseconds read as protobuf-es reads them", () => {
  for (const text of ["2024-11-02T13:00:00Z", "2024-11-02T13:00:00.120Z", "2024-11-02T13:00:00.000001500Z", "1969-12-31T23:59:59.999Z", "0001-01-01T00:00:00Z"]) {
    same(ReplicationSchema, { created_at: text });
  }
});
