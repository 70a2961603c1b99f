// What every resource shares: a call of one RPC from its parameters.
import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { messageFrom, type Params } from "../internal/params";
import type { CallOptions, Transport } from "../internal/transport";

export type { CallOptions, Params };

export abstract class Resource {
  constructor(protected readonly transport: Transport) {}

  protected call<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, params: object, options?: CallOptions): Promise<MessageShape<O>> {
    // A parameter the request cannot take is refused here, as a rejected promise like every other failure.
    try {
      return this.transport.unary(method, messageFrom(method.input, params), options);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
