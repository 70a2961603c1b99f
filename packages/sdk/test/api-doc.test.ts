// api.md names, for each method, the REST route and the RPC: both must be
// the contract's (a route changed in the .proto fails here until api.md
// says so), and every method of each resource documented.
import { readFileSync } from "node:fs";
import { httpRoutes, services } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { HeliosDBReplicationClient } from "../src/index";

const doc = readFileSync(new URL("../api.md", import.meta.url), "utf8");
// Each table row, with the resource its section names (## `client.<resource>`).
const rows = doc.split(/^## /m).flatMap((section) => {
  const resource = /^`client\.(\w+)`/.exec(section)?.[1];
  if (!resource) return [];
  return [...section.matchAll(/^\| `(\w+)\([^`]*\)` \| (.+?) \| `(\w+)\.(\w+)` \|/gm)].map(([, method, how, service, rpc]) => {
    const route = /^`(\w+) ([^`]+)`$/.exec(how!);
    return { resource, method: method!, verb: route?.[1], path: route?.[2], service: service!, rpc: rpc! };
  });
});

test("each method's REST route in api.md is its RPC's route in the contract (a stream: a server-streaming RPC)", () => {
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) {
    const service = services.find((s) => s.name === row.service);
    expect(service, row.service).toBeDefined();
    if (!row.verb) {
      // A stream: no REST route; the RPC must be a server stream of the service.
      expect(service!.methods.find((m) => m.name === row.rpc)?.methodKind, `${row.service}.${row.rpc}`).toBe("server_streaming");
      continue;
    }
    const route = httpRoutes(service!).find((r) => r.method.name === row.rpc);
    expect(route, `${row.service}.${row.rpc}`).toBeDefined();
    expect(`${route!.verb} ${route!.template}`, row.method).toBe(`${row.verb} ${row.path}`);
  }
});

test("every resource of the client, and every method of each, is in api.md", () => {
  const client = new HeliosDBReplicationClient({ baseUrl: "http://localhost:8080/v1" }) as unknown as Record<string, object>;
  const resources = Object.keys(client);
  expect([...new Set(rows.map((r) => r.resource))].sort()).toEqual(resources.sort());
  for (const resource of resources) {
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(client[resource])).filter((m) => m !== "constructor");
    expect(rows.filter((r) => r.resource === resource).map((r) => r.method).sort(), resource).toEqual(methods.sort());
  }
});

test("every RPC of the contract is a method of the client", () => {
  const documented = new Set(rows.map((r) => `${r.service}.${r.rpc}`));
  const missing = services.flatMap((s) => s.methods.map((m) => `${s.name}.${m.name}`)).filter((rpc) => !documented.has(rpc));
  expect(missing).toEqual([]);
});
