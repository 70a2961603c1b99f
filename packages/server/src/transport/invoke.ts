// RPCs called in process: the same service implementations and the same
// interceptors as the Connect router, without a protocol in between. REST
// and gRPC (unary and server-streaming) come through here; REST used to go
// through createRouterTransport, which encoded the request and the response
// to protobuf binary and back on every call only to hand the transcoder the
// message it started from.
import {
  create,
  isMessage,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  createContextKey,
  createContextValues,
  createServiceImplSpec,
  type ContextValues,
  type ConnectRouter,
  type HandlerContext,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { CallHeaders } from "./call-headers";
import { streamOpenedKey } from "../services/context";
import { openStream, single, tapStream } from "./invoke-stream";

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

/** A server-streaming call: one request message in, a stream out. */
export interface StreamCall extends Omit<UnaryCall, "method"> {
  method: DescMethodServerStreaming;
  /**
   * Abort it when the client goes away or the deadline passes: the stream
   * fails with its reason (a ConnectError: Canceled, DeadlineExceeded) and the
   * handler's signal fires. The stream aborts it itself (Canceled) when its
   * reader stops early (`break`, `return()`).
   */
  controller: AbortController;
  /** Called once the implementation's subscription is open (services/context.ts, streamOpenedKey). */
  opened?: () => void;
}

// The call's controller, also in its context values: an interceptor that
// rebuilds the request ({...req}) drops a getter, but keeps those.
const controllerKey = createContextKey<AbortController | undefined>(undefined);

type Next = (req: UnaryRequest) => Promise<UnaryResponse>;
type StreamNext = (req: StreamRequest) => Promise<StreamResponse>;
type Impl = (req: unknown, ctx: HandlerContext) => unknown;

export interface Invoker {
  /** Whether `method` is a unary or server-streaming RPC this invoker can call. */
  has(method: DescMethod): boolean;
  unary(call: UnaryCall): Promise<UnaryResponse>;
  /**
   * Runs the interceptors, then answers the stream of output messages. An
   * error before the stream (authentication, a bad request) rejects the
   * promise; one during it fails the iteration; both are ConnectErrors.
   */
  stream(call: StreamCall): Promise<StreamResponse>;
}

/**
 * Collects every unary and server-streaming implementation that `routes`
 * registers and chains the interceptors around each once, at start-up
 * (Connect chains them per call). Handlers see `protocolName` in their
 * context. Client and bidi streams stay with Connect.
 */
export function createInvoker(routes: (router: ConnectRouter) => void, interceptors: Interceptor[], protocolName: string): Invoker {
  const chains = new Map<DescMethod, Next>();
  const streams = new Map<DescMethod, StreamNext>();
  const collect = (service: DescService, impl: object) => {
    const spec = createServiceImplSpec(service, impl as never);
    for (const method of service.methods) {
      const fn = spec.methods[method.localName]!.impl as Impl;
      if (method.methodKind === "unary") chains.set(method, chain(method as DescMethodUnary, fn, interceptors, protocolName));
      else if (method.methodKind === "server_streaming") streams.set(method, chainStream(method as DescMethodServerStreaming, fn, interceptors, protocolName));
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
    has: (method) => chains.has(method) || streams.has(method),
    unary(call) {
      const next = chains.get(call.method);
      if (!next) throw new Error(`no implementation of ${call.method.parent.typeName}.${call.method.name}`);
      const values = createContextValues().set(controllerKey, call.controller);
      return next(new Request(call, values));
    },
    stream(call) {
      const next = streams.get(call.method);
      if (!next) throw new Error(`no implementation of ${call.method.parent.typeName}.${call.method.name}`);
      const values = createContextValues().set(controllerKey, call.controller);
      if (call.opened) values.set(streamOpenedKey, call.opened);
      let pending: Promise<StreamResponse>;
      try {
        pending = next(new StreamingRequest(call, values));
      } catch (e) {
        pending = Promise.reject(e);
      }
      return openStream(pending, call.controller);
    },
  };
}

function chain(method: DescMethodUnary, impl: Impl, interceptors: Interceptor[], protocolName: string): Next {
  const call: Next = async (req) => {
    const header = new CallHeaders();
    const trailer = new CallHeaders();
    const out = await impl(req.message, new Context(method, req, header, trailer, protocolName));
    const message = isMessage(out, method.output) ? out : create(method.output, out as never);
    return { stream: false, service: method.parent, method, message, header, trailer };
  };
  // As Connect's applyInterceptors: the first interceptor is the outermost.
  return interceptors.reduceRight<Next>((next, interceptor) => interceptor(next as never) as Next, call);
}

function chainStream(method: DescMethodServerStreaming, impl: Impl, interceptors: Interceptor[], protocolName: string): StreamNext {
  const call: StreamNext = async (req) => {
    const input = await single(req.message);
    const header = new CallHeaders();
    const trailer = new CallHeaders();
    // A generator's body runs at the first read: what it throws surfaces in the stream, after the interceptors let it through.
    const out = impl(input, new Context(method, req, header, trailer, protocolName)) as AsyncIterable<unknown>;
    return { stream: true, service: method.parent, method, message: messages(method.output, out), header, trailer };
  };
  return interceptors.reduceRight<StreamNext>((next, interceptor) => interceptor(next as never) as StreamNext, call);
}

// A handler may yield plain objects (MessageInitShape), as with Connect.
function messages(schema: DescMessage, out: AsyncIterable<unknown>): AsyncIterable<MessageShape<DescMessage>> {
  return tapStream(out, (m) => (isMessage(m, schema) ? m : create(schema, m as never)));
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

class StreamingRequest implements StreamRequest {
  readonly stream = true;
  readonly service: DescService;
  readonly method: DescMethodServerStreaming;
  readonly message: AsyncIterable<MessageShape<DescMessage>>;
  readonly requestMethod: string;
  readonly url: string;
  readonly header: Headers;
  readonly signal: AbortSignal;

  constructor(call: StreamCall, readonly contextValues: ContextValues) {
    this.service = call.method.parent;
    this.method = call.method;
    const input = call.message;
    this.message = (async function* () {
      yield input;
    })();
    this.requestMethod = call.requestMethod;
    this.url = call.url;
    this.header = call.header;
    this.signal = call.controller.signal;
  }
}

class Context implements HandlerContext {
  readonly service: DescService;
  readonly requestMethod: string;
  readonly requestHeader: Headers;
  readonly values: ContextValues;
  readonly url: string;

  constructor(
    readonly method: DescMethod,
    private readonly req: UnaryRequest | StreamRequest,
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
