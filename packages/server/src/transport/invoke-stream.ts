// How an in-process stream ends early: the call's AbortController is the one
// switch. The client going away or the deadline aborts it, which fails the
// reader's pending read at once with the abort's reason (the handler may be
// waiting for something that never comes) and closes the handler's
// generator; a reader that stops early (`break`) aborts it the same way, so
// the handler's signal fires in every case. Errors leave as ConnectErrors.
import { Code, ConnectError, type StreamResponse } from "@connectrpc/connect";

/** The stream once the interceptors let it through, or the first of its error and the call's abort. */
export function openStream(pending: Promise<StreamResponse>, controller: AbortController): Promise<StreamResponse> {
  const signal = controller.signal;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(reasonOf(signal));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (res) => {
        signal.removeEventListener("abort", onAbort);
        // Too late: nothing of the stream has run yet (generators start at the first read); let it go.
        if (signal.aborted) void close(res.message[Symbol.asyncIterator]());
        else resolve({ ...res, message: cancellable(res.message, controller) });
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(signal.aborted ? reasonOf(signal) : asConnectError(e));
      },
    );
  });
}

/** The one message of a server-streaming request (as Connect's ensureSingle). */
export async function single<T>(input: AsyncIterable<T>): Promise<T> {
  const it = input[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
  const second = await it.next();
  if (!second.done) throw new ConnectError("protocol error: received extra input message for server-streaming method", Code.Unimplemented);
  return first.value;
}

function cancellable<T>(source: AsyncIterable<T>, controller: AbortController): AsyncIterable<T> {
  const signal = controller.signal;
  const it = source[Symbol.asyncIterator]();
  let over = false;
  // The pending read's reject, so an abort fails it without a Promise.race
  // (whose reactions on a never-settling promise pile up, one per message).
  let fail: ((e: unknown) => void) | undefined;
  const end = () => {
    if (over) return;
    over = true;
    void close(it);
  };
  signal.addEventListener(
    "abort",
    () => {
      fail?.(reasonOf(signal));
      end();
    },
    { once: true },
  );
  const iterator: AsyncIterator<T> = {
    next() {
      if (signal.aborted) return Promise.reject(reasonOf(signal));
      if (over) return Promise.resolve({ done: true, value: undefined });
      return new Promise((resolve, reject) => {
        fail = reject;
        it.next().then(
          (r) => {
            fail = undefined;
            if (r.done) over = true;
            resolve(r);
          },
          (e) => {
            fail = undefined;
            over = true;
            reject(signal.aborted ? reasonOf(signal) : asConnectError(e));
          },
        );
      });
    },
    return() {
      if (!over) controller.abort(new ConnectError("the stream's reader stopped", Code.Canceled));
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/**
 * `source`, each message passed through `each` (its result is what the
 * reader gets), and `end` called once when the reading ends however it ends
 * (the last message, an error, the reader's `return()`); an error of the
 * source reaches the reader as `fail` makes it. An iterator rather
 * than an async generator: a stream of thousands of subscribers crosses
 * several such layers per message, and a generator's machinery per step is
 * most of their cost.
 */
export function tapStream<T, U = T>(source: AsyncIterable<T>, each: (message: T) => U, end?: () => void, fail?: (e: unknown) => unknown): AsyncIterable<U> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<U> {
      const it = source[Symbol.asyncIterator]();
      let ended = false;
      const finish = () => {
        if (ended) return;
        ended = true;
        end?.();
      };
      return {
        next: () =>
          it.next().then(
            (r) => {
              if (r.done) {
                finish();
                return r as IteratorResult<U>;
              }
              return { done: false, value: each(r.value) };
            },
            (e: unknown) => {
              finish();
              throw fail ? fail(e) : e;
            },
          ),
        return: (value?: unknown) => {
          finish();
          return it.return ? (it.return(value) as Promise<IteratorResult<U>>) : Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}

async function close(it: AsyncIterator<unknown>): Promise<void> {
  try {
    await it.return?.();
  } catch {
    // The handler failed while closing: nobody is reading any more.
  }
}

function reasonOf(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError ? signal.reason : ConnectError.from(signal.reason, Code.Canceled);
}

// Errors of ours leave the interceptors as ConnectErrors with the §6 detail; anything else is not for the client's eyes.
function asConnectError(e: unknown): ConnectError {
  return e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
}
