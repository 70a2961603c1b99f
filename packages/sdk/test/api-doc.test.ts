// api.md names, for each method, the REST route and the RPC: both must be
// the contract's (a route changed in the .proto fails here until api.md
// says so), and every method of each resource documented.
import { readFileSync } from "node:fs";
import { httpRoutes, services } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { Replications } from "../src/index";

const doc = readFileSync(new URL("../api.md", import.meta.url), "utf8");
const rows = [...doc.matchAll(/^\| `(\w+)\([^`]*\)` \| `(\w+) ([^`]+)` \| `(\w+)\.(\w+)` \|/gm)].map(([, method, verb, path, service, rpc]) => ({ method: method!, verb: verb!, path: path!, service: service!, rpc: rpc! }));

test("each method's REST route in api.md is its RPC's route in the contract", () => {
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) {
    const service = services.find((s) => s.name === row.service);
    expect(service, row.service).toBeDefined();
    const route = httpRoutes(service!).find((r) => r.method.name === row.rpc);
    expect(route, `${row.service}.${row.rpc}`).toBeDefined();
    expect(`${route!.verb} ${route!.template}`, row.method).toBe(`${row.verb} ${row.path}`);
  }
});

test("every method of client.replications is in api.md", () => {
  const methods = Object.getOwnPropertyNames(Replications.prototype).filter((m) => m !== "constructor");
  expect(rows.map((r) => r.method).sort()).toEqual(methods.sort());
});
