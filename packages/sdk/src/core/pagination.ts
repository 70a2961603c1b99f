// Lists (spec §2.1.3): a call answers one page; the SDK's `list()` answers an
// object that is both the first page (await it) and every item of every page
// (`for await`), with `.pages()` for page by page. Pages are fetched as the
// reader gets to them, one at a time.

export interface Page<T> {
  items: T[];
  /** This page's number, from 1. */
  page: number;
  pageSize: number;
  totalPages: number;
  totalItems: number;
}

export class PagePromise<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  private first: Promise<Page<T>> | undefined;

  constructor(
    private readonly fetchPage: (page: number) => Promise<Page<T>>,
    private readonly startPage = 1,
  ) {}

  then<A = Page<T>, B = never>(onFulfilled?: ((page: Page<T>) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.firstPage().then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Page<T> | B> {
    return this.firstPage().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<Page<T>> {
    return this.firstPage().finally(onFinally);
  }

  /** Each page from the first asked for to the last. */
  async *pages(): AsyncGenerator<Page<T>> {
    let page = await this.firstPage();
    yield page;
    // A page past the last, or an empty one, ends the list (the set may shrink while it is read).
    while (page.page < page.totalPages && page.items.length > 0) {
      page = await this.fetchPage(page.page + 1);
      yield page;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for await (const page of this.pages()) yield* page.items;
  }

  private firstPage(): Promise<Page<T>> {
    return (this.first ??= this.fetchPage(this.startPage));
  }
}
