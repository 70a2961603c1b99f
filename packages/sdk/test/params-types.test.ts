// The parameters' enum types: a field takes its enum's REST spellings
// (enum-names.ts, generated from the descriptors) and its numbers, and no
// other string; tsc checks the @ts-expect-error lines (this file is in the
// package's typecheck), vitest the run-time check that stays for JavaScript.
import { MetricsResolution, QoSTier, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import { expect, expectTypeOf, test } from "vitest";
import { messageFrom } from "../src/internal/params";
import type { Metrics } from "../src/resources/metrics";
import type { Replications } from "../src/resources/replications";

type Config = NonNullable<Parameters<Replications["create"]>[0]["config"]>;
type ListFilters = NonNullable<Parameters<Replications["list"]>[0]>;
type SeriesParams = NonNullable<Parameters<Metrics["get"]>[1]>;

test("an enum parameter is the union of its REST spellings and its numbers", () => {
  expectTypeOf<NonNullable<Config["qosTier"]>>().toEqualTypeOf<QoSTier | "BestEffort" | "Standard" | "Premium" | "Synchronous">();
  expectTypeOf<"Streaming">().toExtend<NonNullable<ListFilters["status"]>>();
  expectTypeOf<"1m">().toExtend<NonNullable<SeriesParams["resolution"]>>();

  const byName: Config = { qosTier: "Premium" };
  const byNumber: Config = { qosTier: QoSTier.PREMIUM };
  const filters: ListFilters = { qosTier: "Standard", status: "Streaming", sortOrder: "desc" };
  const series: SeriesParams = { resolution: MetricsResolution.ONE_MINUTE };
  // @ts-expect-error the spelling is "Premium"
  const lowerCase: Config = { qosTier: "premium" };
  // @ts-expect-error the proto name is accepted at run time only
  const protoName: Config = { qosTier: "QOS_TIER_PREMIUM" };
  // @ts-expect-error "5s" is not a resolution
  const resolution: SeriesParams = { resolution: "5s" };
  expect([byName, byNumber, filters, series, lowerCase, protoName, resolution]).toHaveLength(7);
});

test("the run-time check still refuses what the types refuse, naming the accepted values", () => {
  expect(messageFrom(ReplicationConfigSchema, { qosTier: "Premium" }).qosTier).toBe(QoSTier.PREMIUM);
  expect(messageFrom(ReplicationConfigSchema, { qosTier: QoSTier.PREMIUM }).qosTier).toBe(QoSTier.PREMIUM);
  expect(() => messageFrom(ReplicationConfigSchema, { qosTier: "premium" })).toThrow(
    'qosTier: unknown value "premium"; one of BestEffort, Standard, Premium, Synchronous',
  );
});
