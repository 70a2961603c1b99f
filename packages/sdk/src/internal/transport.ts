// What a resource needs from a transport: one unary call of the contract,
// message in, message out, errors as HeliosDBErrors. REST is the first;
// Connect, gRPC-web and gRPC come as further implementations of the same face.
import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import type { RestConfig } from "./rest-fetch";
import { restInvoke, type CallOptions } from "./rest-transport";

export interface Transport {
  unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, message: MessageShape<I>, options?: CallOptions): Promise<MessageShape<O>>;
}

export function restTransport(config: RestConfig): Transport {
  return { unary: (method, message, options) => restInvoke(config, method, message, options) };
}

export type { CallOptions };
