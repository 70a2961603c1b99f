import { describe, expect, test } from "vitest";
import { CallHeaders } from "./call-headers";

// Every operation, on a CallHeaders and on a WHATWG Headers: the interceptors and handlers cannot tell them apart.
describe("CallHeaders answers as a WHATWG Headers does", () => {
  // Typed as ours: the DOM lib's Headers type here declares no iteration, though undici's Headers iterates.
  const steps: [string, (h: CallHeaders) => unknown][] = [
    ["set, any case", (h) => h.set("X-Request-Id", "req-1")],
    ["get, other case", (h) => h.get("x-REQUEST-id")],
    ["has", (h) => [h.has("x-request-id"), h.has("authorization")]],
    ["get of an absent name", (h) => h.get("authorization")],
    ["append twice", (h) => (h.append("Vary", "Origin"), h.append("vary", "Accept"), h.get("VARY"))],
    ["set replaces", (h) => (h.set("x-ratelimit-remaining", "9"), h.set("X-RateLimit-Remaining", "8"), h.get("x-ratelimit-remaining"))],
    ["entries, sorted by lower-case name", (h) => [...h.entries()]],
    ["keys and values", (h) => [[...h.keys()], [...h.values()]]],
    ["iteration", (h) => [...h]],
    ["forEach", (h) => { const seen: string[] = []; h.forEach((v, k) => seen.push(`${k}=${v}`)); return seen; }],
    ["delete, any case", (h) => (h.delete("VARY"), [h.has("vary"), [...h.keys()]])],
    ["getSetCookie without one", (h) => h.getSetCookie()],
  ];
  const ours = new CallHeaders();
  const theirs = new Headers() as unknown as CallHeaders;
  for (const [name, step] of steps) test(name, () => expect(step(ours)).toEqual(step(theirs)));

  test("made from name–value pairs, and copied into a WHATWG Headers", () => {
    const made = new CallHeaders([["Authorization", "Bearer x"], ["x-api-key", "k"]]);
    const whatwg = (init: HeadersInit) => new Headers(init) as unknown as CallHeaders;
    expect([...made]).toEqual([...whatwg([["Authorization", "Bearer x"], ["x-api-key", "k"]])]);
    expect([...whatwg(made)]).toEqual([["authorization", "Bearer x"], ["x-api-key", "k"]]);
  });
});
