// The routing watch's own logic, on connections the test makes up: each
// connection starts with the routing as the server has it then, which may be
// a version delivered already (or, from a server behind, an older one):
// dropped; every newer version is delivered once, in order; a verdict ends it.
import { create } from "@bufbuild/protobuf";
import { RoutingService, TenantRoutingSchema, type TenantRouting, type WatchTenantRoutingResponse } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { ConnectionError, NotFoundError } from "../src/core/index";
import type { Transport } from "../src/internal/transport";
import { routingWatch } from "../src/lib/watch-tenant-routing";

const instant = { sleep: async () => undefined, random: () => 1 };
const dropped = () => new ConnectionError({ code: "CONNECTION_ERROR", message: "connection reset" });

/** A transport whose n-th connection of the watch sends `versions[n]`, then fails with `ends[n]`; cancelled, as a real one, by its signal. */
function scripted(versions: number[][], ends: Error[]) {
  const requests: unknown[] = [];
  const transport = {
    unary: () => Promise.reject(new Error("no unary call here")),
    stream(method: unknown, message: { tenantId: string }, signal: AbortSignal) {
      expect(method).toBe(RoutingService.method.watchTenantRouting);
      const n = requests.push(message.tenantId) - 1;
      return (async function* (): AsyncGenerator<WatchTenantRoutingResponse> {
        for (const version of versions[n] ?? []) {
          if (signal.aborted) throw signal.reason;
          yield { $typeName: "heliosdb.replication.v1.WatchTenantRoutingResponse", routing: create(TenantRoutingSchema, { tenantId: message.tenantId, version: BigInt(version) }) };
        }
        throw ends[n] ?? dropped();
      })();
    },
  } as unknown as Transport;
  return { transport, requests };
}

test("a reconnect's first message, delivered already or older, is dropped; every newer version once, in order; NOT_FOUND ends it", async () => {
  const s = scripted([[1, 2], [2, 1, 3], [3, 4]], [dropped(), dropped(), new NotFoundError({ code: "NOT_FOUND", message: "no routing recorded for tenant t" })]);
  const got: TenantRouting[] = [];
  await expect(
    (async () => {
      for await (const r of routingWatch(s.transport, "t", instant)) got.push(r);
    })(),
  ).rejects.toBeInstanceOf(NotFoundError);
  expect(got.map((r) => Number(r.version))).toEqual([1, 2, 3, 4]);
  expect(s.requests).toEqual(["t", "t", "t"]);
});

test("an aborted signal ends the watch before it connects, and while it reads", async () => {
  const s = scripted([[1, 2, 3]], []);
  const before = new AbortController();
  before.abort();
  const none: TenantRouting[] = [];
  for await (const r of routingWatch(s.transport, "t", instant, { signal: before.signal })) none.push(r);
  expect(none).toEqual([]);
  expect(s.requests).toEqual([]);

  const during = new AbortController();
  const got: TenantRouting[] = [];
  for await (const r of routingWatch(s.transport, "t", instant, { signal: during.signal })) {
    got.push(r);
    during.abort();
  }
  expect(got.map((r) => Number(r.version))).toEqual([1]);
});
