// In Node, a REST attempt's timeout is kept by the connection pool instead
// of an AbortSignal per attempt: an undici Agent whose connect, headers and
// body timeouts are the client's timeout closes a silent server's socket
// itself. Node's fetch follows a request's signal with a WeakRef, a
// listener and a FinalizationRegistry entry — about a seventh of a GET's
// cost against a local server (docs/benchmarks.md, `rest-with-timeout`) —
// and the pool does the same work with none of it.
//
// The Agent comes from the `undici` package and is handed to the platform's
// fetch (so a test's msw still sees every request) only when Node's own
// undici is of the same major version: a dispatcher of another major speaks
// another handler API. Elsewhere the SDK keeps its signal per attempt.
import { Agent } from "undici";

/** The major version of the `undici` this package depends on (a test checks it against package.json). */
export const UNDICI_MAJOR = 6;

/** A pool that gives up on a socket silent for `timeoutMs`, or undefined where Node's fetch could not use it. */
export function timeoutPool(timeoutMs: number): object | undefined {
  if (Number(process.versions.undici?.split(".")[0]) !== UNDICI_MAJOR) return undefined;
  return new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
}
