// Unary RPCs called in process: the same service implementations and the
// same interceptors as the Connect router, without a protocol in between.
// REST used to reach them through createRouterTransport, which encoded the
// request and the response to protobuf binary and back on every call only
// to hand the transcoder the message it started from.
import { create, isMessage, type DescMessage, type DescMethod, type DescMethodUnary, type DescService, type MessageShape } from "@bufbuild/protobuf";
import {
  createContextKey,
  createContextValues,
  createServiceImplSpec,
  type ContextValues,
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
  /**
   * Aborted when the client goes away (or the call's deadline passes), never
   * at a normal end (an abort makes a DOMException). Its signal is made only
   * if a handler asks for it: Node makes AbortSignals lazily, and making one
   * is a measurable share of a short call.
   */
  controller: AbortController;
}

// The call's controller, also in its context values: an interceptor that
// rebuilds the request ({...req}) drops a getter, but keeps those.
const controllerKey = createContextKey<AbortController | undefined>(undefined);

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
      const values = createContextValues().set(controllerKey, call.controller);
      return next(new Request(call, values));
    },
  };
}

function chain(method: DescMethodUnary, impl: (req: unknown, ctx: HandlerContext) => unknown, interceptors: Interceptor[], protocolName: string): Next {
  const call: Next = async (req) => {
    const header = new Headers();
    const trailer = new Headers();
    const out = await impl(req.message, new Context(method, req, header, trailer, protocolName));
    const message = isMessage(out, method.output) ? out : create(method.output, out as never);
    return { stream: false, service: method.parent, method, message, header, trailer };
  };
  // As Connect's applyInterceptors: the first interceptor is the outermost.
  return interceptors.reduceRight<Next>((next, interceptor) => interceptor(next as never) as Next, call);
}

// Classes rather than object literals: a literal with a getter is slow to
// make (more than the call's Headers), and `signal` has to be a getter to
// stay lazy.
class Request implements UnaryRequest {
  readonly stream = false;
  readonly service: DescService;
  readonly method: DescMethodUnary;
  readonly message: MessageShape<DescMessage>;
  readonly requestMethod: string;
  readonly url: string;
  readonly header: Headers;

  constructor(
    private readonly call: UnaryCall,
    readonly contextValues: ContextValues,
  ) {
    this.service = call.method.parent;
    this.method = call.method;
    this.message = call.message;
    this.requestMethod = call.requestMethod;
    this.url = call.url;
    this.header = call.header;
  }

  get signal(): AbortSignal {
    return this.call.controller.signal;
  }
}

class Context implements HandlerContext {
  readonly service: DescService;
  readonly requestMethod: string;
  readonly requestHeader: Headers;
  readonly values: ContextValues;
  readonly url: string;

  constructor(
    readonly method: DescMethodUnary,
    private readonly req: UnaryRequest,
    readonly responseHeader: Headers,
    readonly responseTrailer: Headers,
    readonly protocolName: string,
  ) {
    this.service = method.parent;
    this.requestMethod = req.requestMethod;
    this.requestHeader = req.header;
    this.values = req.contextValues;
    this.url = req.url;
  }

  get signal(): AbortSignal {
    return (this.req.signal as AbortSignal | undefined) ?? this.values.get(controllerKey)!.signal;
  }

  timeoutMs(): number | undefined {
    return undefined;
  }
}
