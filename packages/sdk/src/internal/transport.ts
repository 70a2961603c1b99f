// What a resource needs from a transport: one unary call of the contract,
// message in, message out, errors as HeliosDBErrors. REST is the first;
// Connect, gRPC-web and gRPC come as further implementations of the same face.
import type { DescMessage, DescMethodServerStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import type { RestConfig } from "./rest-fetch";
import { restInvoke, type CallOptions } from "./rest-transport";

export interface Transport {
  unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, message: MessageShape<I>, options?: CallOptions): Promise<MessageShape<O>>;
  /** One connection of a server stream (no retries: ResumableStream reconnects); its errors are HeliosDBErrors. */
  stream<I extends DescMessage, O extends DescMessage>(method: DescMethodServerStreaming<I, O>, message: MessageShape<I>, signal: AbortSignal): AsyncIterable<MessageShape<O>>;
}

/** REST for unary calls; its streams go to `streams` (for now the Connect protocol on the same port). */
export function restTransport(config: RestConfig, streams: Pick<Transport, "stream">): Transport {
  return { unary: (method, message, options) => restInvoke(config, method, message, options), stream: (method, message, signal) => streams.stream(method, message, signal) };
}

export type { CallOptions };
