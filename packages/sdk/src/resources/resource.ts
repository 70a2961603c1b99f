// What every resource shares: a call of one RPC from its parameters, and a
// list RPC as pages (every List response holds one list and its pagination).
import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import type { Pagination } from "@heliosdb/replication-proto";
import { PagePromise } from "../core/pagination";
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

  /** A List RPC: awaited, its first page; iterated, every item of every page. */
  protected paged<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, params: { page?: number }, options?: CallOptions): PagePromise<ItemOf<MessageShape<O>>> {
    const list = method.output.fields.find((f) => f.fieldKind === "list")!.localName;
    return new PagePromise(async (page) => {
      const answer = (await this.call(method, { ...params, page }, options)) as unknown as Record<string, unknown> & { pagination?: Pagination };
      const p = answer.pagination;
      return { items: answer[list] as ItemOf<MessageShape<O>>[], page: p?.page ?? page, pageSize: p?.pageSize ?? 0, totalPages: p?.totalPages ?? 0, totalItems: p?.totalItems ?? 0 };
    }, params.page || 1);
  }
}

/** The element type of a List response's list. */
export type ItemOf<T> = { [K in Exclude<keyof T, "$unknown">]-?: NonNullable<T[K]> extends readonly (infer E)[] ? E : never }[Exclude<keyof T, "$unknown">];
