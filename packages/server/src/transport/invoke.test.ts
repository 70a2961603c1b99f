// The in-process invoker runs the interceptors around the implementation as
// Connect does, for unary and server-streaming calls, and gives handlers a
// signal that aborts only when told to (or, for a stream, when its reader
// stops early).
import { create, isMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import {
  GetReplicationRequestSchema,
  ReplicationMetricsSchema,
  ReplicationSchema,
  ReplicationService,
  StreamMetricsRequestSchema,
} from "@heliosdb/replication-proto";
import { describe, expect, test, vi } from "vitest";
import { apiError, apiErrorOf } from "./errors";
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

describe("createInvoker: server-streaming calls", () => {
  const metrics = ReplicationService.method.streamReplicationMetrics;
  type Seen = { calls: number; signal?: AbortSignal; finished?: boolean; protocol?: string };

  // Streams `count` samples, then fails when the id says so, or waits for the call to end.
  function streamer(interceptors: Interceptor[], seen: Seen) {
    const routes = (router: ConnectRouter) => {
      router.service(ReplicationService, {
        async *streamReplicationMetrics(req: { replicationId: string; intervalSeconds: number }, ctx: HandlerContext) {
          seen.calls++;
          seen.signal = ctx.signal;
          seen.protocol = ctx.protocolName;
          try {
            for (let i = 1; i <= req.intervalSeconds; i++) yield { replicationId: req.replicationId, replicationLagBytes: BigInt(i) };
            if (req.replicationId === "fail") throw apiError("REPLICATION_LAG_EXCEEDED", "too far behind", { replication_id: "fail" });
            if (req.replicationId === "wait") await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
          } finally {
            seen.finished = true;
          }
        },
      } as never);
    };
    return createInvoker(routes, interceptors, "grpc");
  }

  const streamCall = (replicationId: string, count: number, controller = new AbortController()) => ({
    method: metrics,
    message: create(StreamMetricsRequestSchema, { replicationId, intervalSeconds: count }),
    header: new Headers(),
    requestMethod: "POST",
    url: "http://localhost/heliosdb.replication.v1.ReplicationService/StreamReplicationMetrics",
    controller,
  });

  async function read(messages: AsyncIterable<{ replicationLagBytes: bigint }>, into: bigint[]) {
    for await (const m of messages) into.push(m.replicationLagBytes);
  }

  test("interceptors see a stream request and response; messages arrive in order, as messages", async () => {
    const kinds: string[] = [];
    const spy: Interceptor = (next) => async (req) => {
      kinds.push(`request stream=${req.stream}`);
      const res = await next(req);
      kinds.push(`response stream=${res.stream}`);
      return res;
    };
    const seen: Seen = { calls: 0 };
    const res = await streamer([spy], seen).stream(streamCall("r1", 3));
    const lags: bigint[] = [];
    for await (const m of res.message) {
      expect(isMessage(m, ReplicationMetricsSchema)).toBe(true);
      lags.push((m as unknown as { replicationLagBytes: bigint }).replicationLagBytes);
    }
    expect(lags).toEqual([1n, 2n, 3n]);
    expect(kinds).toEqual(["request stream=true", "response stream=true"]);
    expect(seen).toMatchObject({ protocol: "grpc", finished: true });
    expect(seen.signal?.aborted).toBe(false);
  });

  test("an interceptor's refusal rejects the call before the handler runs; a handler's error fails the stream after its messages", async () => {
    const refuse: Interceptor = () => async () => {
      throw apiError("UNAUTHORIZED", "no token");
    };
    const seen: Seen = { calls: 0 };
    await expect(streamer([refuse], seen).stream(streamCall("r1", 3))).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(seen.calls).toBe(0);

    const res = await streamer([], seen).stream(streamCall("fail", 2));
    const lags: bigint[] = [];
    const error = await read(res.message as never, lags).catch((e: unknown) => e);
    expect(lags).toEqual([1n, 2n]);
    expect(error).toBeInstanceOf(ConnectError);
    expect(apiErrorOf(error as ConnectError)?.code).toBe("REPLICATION_LAG_EXCEEDED");
  });

  test("a reader that stops early aborts the handler's signal and closes its generator", async () => {
    const seen: Seen = { calls: 0 };
    const res = await streamer([], seen).stream(streamCall("r1", 100));
    for await (const _ of res.message) break;
    expect(seen.signal?.aborted).toBe(true);
    expect(seen.signal?.reason).toMatchObject({ code: Code.Canceled });
    await vi.waitFor(() => expect(seen.finished).toBe(true));
  });

  test("aborting the call fails a pending read with the abort's reason, and the waiting handler ends", async () => {
    const seen: Seen = { calls: 0 };
    const controller = new AbortController();
    const res = await streamer([], seen).stream(streamCall("wait", 1, controller));
    const it = res.message[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    const pending = it.next();
    controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    await expect(pending).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    await vi.waitFor(() => expect(seen.finished).toBe(true));
    await expect(it.next()).rejects.toMatchObject({ code: Code.DeadlineExceeded });
  });

  test("a call aborted before the interceptors let it through rejects with the reason; the handler never runs", async () => {
    const seen: Seen = { calls: 0 };
    const controller = new AbortController();
    let release!: () => void;
    const slow: Interceptor = (next) => async (req) => {
      await new Promise<void>((resolve) => (release = resolve));
      return next(req);
    };
    const opened = streamer([slow], seen).stream(streamCall("r1", 1, controller));
    controller.abort(new ConnectError("the client went away", Code.Canceled));
    await expect(opened).rejects.toMatchObject({ code: Code.Canceled });
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen.calls).toBe(0);
  });
});
