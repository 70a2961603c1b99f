// Every JSON example of spec §2 round-trips through the proto messages with
// the REST mapping, without loss: each value the spec writes comes back the
// same, and anything added is a field's zero value, never an invented figure.
import { equals } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { fromRest, restQueryToJson, toRest } from "../src/rest/index";
import { methodOf, specExamples } from "./spec";

describe("spec §2 examples round-trip through the REST mapping", () => {
  test("all 25 examples are there", () => {
    expect(specExamples).toHaveLength(25);
  });

  for (const example of specExamples.filter((e) => e.kind !== "query")) {
    test(example.name, () => {
      const method = methodOf(example.rpc);
      const schema = example.kind === "request" ? method.input : method.output;
      const message = fromRest(schema, example.json);
      const json = toRest(schema, message);
      expect(json).toMatchObject(example.json!);
      expect(additions(json, example.json!)).toEqual([]);
      expect(equals(schema, fromRest(schema, json), message), "REST JSON → message → REST JSON is stable").toBe(true);
    });
  }

  test("2.1.3 query: status=Streaming&qos_tier=Premium&page=1", () => {
    const method = methodOf("heliosdb.replication.v1.ReplicationService/ListReplications");
    const request = fromRest(method.input, restQueryToJson(method.input, new URLSearchParams(queryOf("2.1.3"))));
    expect(toRest(method.input, request)).toMatchObject({ status: "Streaming", qos_tier: "Premium", page: 1 });
  });

  test("2.1.5 query: cleanup_target=false", () => {
    const method = methodOf("heliosdb.replication.v1.ReplicationService/DeleteReplication");
    const request = fromRest(method.input, restQueryToJson(method.input, new URLSearchParams(queryOf("2.1.5"))));
    expect(toRest(method.input, request)).toEqual({ id: "", cleanup_target: false });
  });
});

function queryOf(section: string): string {
  return specExamples.find((e) => e.section === section && e.kind === "query")!.query!;
}

// Paths of values in `actual` that `expected` lacks and that are not zero
// values (0, "", false, [], {}): what the mapping would have invented.
function additions(actual: unknown, expected: unknown, path = ""): string[] {
  if (Array.isArray(actual) && Array.isArray(expected)) {
    return actual.flatMap((item, i) => additions(item, expected[i], `${path}[${i}]`));
  }
  if (isObject(actual) && isObject(expected)) {
    return Object.entries(actual).flatMap(([key, value]) =>
      key in expected ? additions(value, expected[key], `${path}.${key}`) : isZero(value) ? [] : [`${path}.${key}`],
    );
  }
  return [];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isZero(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0;
  if (isObject(value)) return Object.values(value).every(isZero);
  return value === 0 || value === "" || value === false;
}
