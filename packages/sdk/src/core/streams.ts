// The SDK's streams (metric samples, events): an AsyncIterable — `break` out
// of `for await` ends the call — with an event-emitter face as spec §9.1 uses
// it (`on('data' | 'error' | 'reconnect' | 'end')`) and `abort()`. A dropped
// connection, a server restart or a node change does not end it: it
// reconnects after the §6.3 backoff and resumes — an event stream from the
// last cursor it delivered, so each event arrives exactly once; a metric
// stream with a fresh sample. It gives up (an 'error', and the iteration
// throws) on a verdict that another attempt cannot change (NOT_FOUND when
// the replication is deleted, UNAUTHORIZED…), or after `maxAttempts`
// connections in a row that failed without delivering anything.
import { HeliosDBError } from "./errors";
import { abortableSleep, DEFAULT_RETRY_POLICY, isRetryable, retryDelayMs, type RetryPolicy } from "./retry";

export interface ReconnectInfo {
  /** Connections in a row that failed (1 for the first reconnect after a failure). */
  attempt: number;
  /** The wait before this reconnect. */
  delayMs: number;
  /** Why the connection ended. */
  error: unknown;
}

export interface StreamOptions {
  policy?: RetryPolicy;
  /** For tests: the wait and the randomness of the backoff. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

type Listeners<T> = {
  data: (item: T) => void;
  error: (error: HeliosDBError) => void;
  reconnect: (info: ReconnectInfo) => void;
  end: () => void;
};

/** A server stream that outlives its connections. `open` is called for each connection, with what to resume from known by the caller. */
export class ResumableStream<T> implements AsyncIterable<T> {
  private readonly controller = new AbortController();
  private readonly listeners: { [E in keyof Listeners<T>]: Set<Listeners<T>[E]> } = { data: new Set(), error: new Set(), reconnect: new Set(), end: new Set() };
  private consumed = false;
  private ended = false;

  /** `delivered` is told of each item as it is handed over (before any listener): what the next connection resumes after. */
  constructor(
    private readonly open: (signal: AbortSignal) => AsyncIterable<T>,
    private readonly options: StreamOptions = {},
    private readonly delivered?: (item: T) => void,
  ) {}

  /** Listens; the first 'data' listener starts reading the stream (when no `for await` does). */
  on<E extends keyof Listeners<T>>(event: E, listener: Listeners<T>[E]): this {
    this.listeners[event].add(listener);
    if (event === "data" && !this.consumed) void this.drain();
    return this;
  }

  off<E extends keyof Listeners<T>>(event: E, listener: Listeners<T>[E]): this {
    this.listeners[event].delete(listener);
    return this;
  }

  /** Ends the stream: the call is cancelled, `for await` ends, 'end' is emitted. */
  abort(): void {
    this.controller.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.consumed) throw new TypeError("this stream is already being read: iterate it once, or listen with on('data')");
    this.consumed = true;
    return this.run();
  }

  private async drain(): Promise<void> {
    try {
      for await (const _ of this);
    } catch {
      // Emitted as 'error' already.
    }
  }

  private async *run(): AsyncGenerator<T> {
    const policy = this.options.policy ?? DEFAULT_RETRY_POLICY;
    const signal = this.controller.signal;
    let failures = 0;
    try {
      while (!signal.aborted) {
        let got = false;
        let why: unknown;
        try {
          for await (const item of this.open(signal)) {
            got = true;
            failures = 0;
            this.delivered?.(item);
            this.emit("data", item);
            yield item;
          }
          // The server ended the stream (a restart that closes its calls): these streams do not end by themselves.
          why = new HeliosDBError({ code: "CONNECTION_ERROR", message: "the server ended the stream" });
        } catch (e) {
          if (signal.aborted) return;
          if (!isRetryable(e)) throw this.fail(e);
          why = e;
        }
        if (!got && ++failures >= policy.maxAttempts) throw this.fail(why);
        const delayMs = retryDelayMs(Math.max(0, failures - 1), policy, why, this.options.random);
        this.emit("reconnect", { attempt: Math.max(1, failures), delayMs, error: why });
        try {
          await (this.options.sleep ?? abortableSleep)(delayMs, signal);
        } catch {
          return; // aborted while waiting
        }
      }
    } finally {
      // `break` out of the reader's loop lands here too: the call is cancelled.
      this.controller.abort();
      if (!this.ended) {
        this.ended = true;
        this.emit("end");
      }
    }
  }

  private fail(e: unknown): HeliosDBError {
    const error = e instanceof HeliosDBError ? e : new HeliosDBError({ code: "INTERNAL_ERROR", message: (e as Error)?.message ?? String(e), cause: e });
    this.emit("error", error);
    return error;
  }

  private emit<E extends keyof Listeners<T>>(event: E, ...args: Parameters<Listeners<T>[E]>): void {
    for (const listener of this.listeners[event]) (listener as (...a: unknown[]) => void)(...args);
  }
}
