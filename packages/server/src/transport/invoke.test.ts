// The in-process invoker runs the interceptors around the implementation as
// Connect does, and gives handlers a signal that aborts only when told to.
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext, Interceptor } from "@connectrpc/connect";
import { GetReplicationRequestSchema, ReplicationSchema, ReplicationService } from "@heliosdb/replication-proto";
import { describe, expect, test } from "vitest";
import { createInvoker } from "./invoke";

const get = ReplicationService.method.getReplication;

function invoker(interceptors: Interceptor[], seen: { signal?: AbortSignal; protocol?: string }) {
  const routes = (router: ConnectRouter) => {
    router.service(ReplicationService, {
      getReplication(req: { id: string }, ctx: HandlerContext) {
        seen.signal = ctx.signal;
        seen.protocol = ctx.protocolName;
        ctx.responseHeader.set("x-seen", ctx.requestHeader.get("x-in") ?? "");
        return { id: req.id, tenantId: "t" };
      },
    } as never);
  };
  return createInvoker(routes, interceptors, "rest");
}

const call = (controller = new AbortController()) => ({
  method: get,
  message: create(GetReplicationRequestSchema, { id: "r1" }),
  header: new Headers({ "x-in": "hello" }),
  requestMethod: "GET",
  url: "http://localhost/v1/replications/r1",
  controller,
});

describe("createInvoker", () => {
  test("interceptors run outermost first around the implementation, whose answer becomes a message", async () => {
    const order: string[] = [];
    const named = (name: string): Interceptor => (next) => async (req) => {
      order.push(`${name} in`);
      const res = await next(req);
      order.push(`${name} out`);
      return res;
    };
    const seen = {};
    const res = await invoker([named("a"), named("b")], seen).unary(call());
    expect(order).toEqual(["a in", "b in", "b out", "a out"]);
    expect(res.message).toEqual(create(ReplicationSchema, { id: "r1", tenantId: "t" }));
    expect(res.header.get("x-seen")).toBe("hello");
  });

  test("the handler's signal is the call's, also through an interceptor that rebuilds the request", async () => {
    const rebuild: Interceptor = (next) => (req) => next({ ...req });
    for (const interceptors of [[], [rebuild]]) {
      const seen: { signal?: AbortSignal; protocol?: string } = {};
      const controller = new AbortController();
      await invoker(interceptors, seen).unary(call(controller));
      expect(seen.protocol).toBe("rest");
      expect(seen.signal?.aborted).toBe(false);
      controller.abort(new Error("gone"));
      expect(seen.signal?.aborted).toBe(true);
    }
  });
});
