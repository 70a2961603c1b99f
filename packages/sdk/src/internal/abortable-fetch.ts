// The fetch the Connect and gRPC-web transports call, whose response body an
// abort always ends — closing the connection, so the server's call ends too.
//
// Node's fetch (undici) follows the caller's AbortSignal through a WeakRef
// to the Request it builds inside fetch(). Once the response has arrived
// nothing else holds that Request, and after a garbage collection aborting
// the signal no longer reaches the connection (nodejs/node#55428): an
// aborted watch left its socket open and the server's stream running for as
// long as the process lived. The body is therefore read through a stream of
// our own, whose abort listener holds the original body's reader and cancels
// it, which closes the connection whatever the collector did.

export function abortableFetch(fetchImpl?: typeof fetch): typeof fetch {
  return async (input, init) => {
    // Read at call time: a test's mock (msw) may replace the global after the client was made.
    const response = await (fetchImpl ?? globalThis.fetch)(input, init);
    const signal = init?.signal;
    if (!signal || !response.body) return response;
    return new Response(bodyEndedBy(response.body, signal), { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

function bodyEndedBy(body: ReadableStream<Uint8Array>, signal: AbortSignal): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let onAbort: () => void = () => undefined;
  const settle = () => signal.removeEventListener("abort", onAbort);
  return new ReadableStream<Uint8Array>({
    start(controller) {
      onAbort = () => {
        settle();
        controller.error(signal.reason);
        void reader.cancel(signal.reason).catch(() => undefined);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (signal.aborted) return;
        if (done) {
          settle();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (e) {
        settle();
        if (!signal.aborted) controller.error(e);
      }
    },
    cancel(reason) {
      settle();
      return reader.cancel(reason);
    },
  });
}
