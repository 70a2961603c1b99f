// Unary RPCs called in process: the same service implementations and the
// same interceptors as the Connect router, without a protocol in between.
// REST used to reach them through createRouterTransport, which encoded the
// request and the response to protobuf binary and back on every call only
// to hand the transcoder the message it started from.
import { create, isMessage, type DescMessage, type DescMethod, type DescMethodUnary, type DescService, type MessageShape } from "@bufbuild/protobuf";
import {
  createContextValues,
  createServiceImplSpec,
  type ConnectRouter,
  type HandlerContext,
  type Interceptor,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";

export interface UnaryCall {
  method: DescMethodUnary;
  message: MessageShape<DescMessage>;
  header: Headers;
  requestMethod: string;
  url: string;
  /** Aborted when the client goes away (or the call's deadline passes); never at a normal end, which costs a DOMException. */
  signal: AbortSignal;
}

type Next = (req: UnaryRequest) => Promise<UnaryResponse>;

export interface Invoker {
  /** Whether `method` is a unary RPC this invoker can call. */
  has(method: DescMethod): boolean;
  unary(call: UnaryCall): Promise<UnaryResponse>;
}

/**
 * Collects every unary implementation that `routes` registers and chains the
 * interceptors around each once, at start-up (Connect chains them per call).
 * Handlers see `protocolName` in their context.
 */
export function createInvoker(routes: (router: ConnectRouter) => void, interceptors: Interceptor[], protocolName: string): Invoker {
  const chains = new Map<DescMethod, Next>();
  const collect = (service: DescService, impl: object) => {
    const spec = createServiceImplSpec(service, impl as never);
    for (const method of service.methods) {
      if (method.methodKind !== "unary") continue; // streams stay with Connect
      const fn = spec.methods[method.localName]!.impl as (req: unknown, ctx: HandlerContext) => unknown;
      chains.set(method, chain(method as DescMethodUnary, fn, interceptors, protocolName));
    }
  };
  const recorder: ConnectRouter = {
    handlers: [],
    service(service, impl) {
      collect(service, impl);
      return recorder;
    },
    rpc() {
      return recorder;
    },
  };
  routes(recorder);
  return {
    has: (method) => chains.has(method),
    unary(call) {
      const next = chains.get(call.method);
      if (!next) throw new Error(`no implementation of ${call.method.parent.typeName}.${call.method.name}`);
      return next({
        stream: false,
        service: call.method.parent,
        method: call.method,
        message: call.message,
        requestMethod: call.requestMethod,
        url: call.url,
        signal: call.signal,
        header: call.header,
        contextValues: createContextValues(),
      });
    },
  };
}

function chain(method: DescMethodUnary, impl: (req: unknown, ctx: HandlerContext) => unknown, interceptors: Interceptor[], protocolName: string): Next {
  const call: Next = async (req) => {
    // Plain objects throughout: an object literal with a getter costs more to make than the call's Headers.
    const header = new Headers();
    const trailer = new Headers();
    const context: HandlerContext = {
      method,
      service: method.parent,
      signal: req.signal,
      timeoutMs: () => undefined,
      requestMethod: req.requestMethod,
      requestHeader: req.header,
      responseHeader: header,
      responseTrailer: trailer,
      protocolName,
      values: req.contextValues,
      url: req.url,
    };
    const out = await impl(req.message, context);
    const message = isMessage(out, method.output) ? out : create(method.output, out as never);
    return { stream: false, service: method.parent, method, message, header, trailer };
  };
  // As Connect's applyInterceptors: the first interceptor is the outermost.
  return interceptors.reduceRight<Next>((next, interceptor) => interceptor(next as never) as Next, call);
}
