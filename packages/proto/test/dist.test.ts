// The published build (ESM and CJS) loads and carries the descriptors.
import { createRequire } from "node:module";
import { expect, test } from "vitest";

// Loaded by URL, untyped: the build is what is tested, and it may be older than
// the sources the type check reads (turbo builds before it tests).
const dist = (file: string) => new URL(`../dist/${file}`, import.meta.url);

test("dist/index.js (ESM) exports the services, messages and the REST mapping", async () => {
  const proto = await import(dist("index.js").href);
  expect(proto.services.map((s: { name: string }) => s.name)).toContain("ReplicationService");
  expect(proto.ReplicationService.method.createReplication.input.typeName).toBe(
    "heliosdb.replication.v1.CreateReplicationRequest",
  );
  expect(typeof proto.toRest).toBe("function");
});

test("dist/index.cjs (CommonJS) loads the same", () => {
  const proto = createRequire(import.meta.url)(dist("index.cjs").pathname);
  expect(proto.services).toHaveLength(11);
  expect(proto.QoSTier.PREMIUM).toBe(2);
});
