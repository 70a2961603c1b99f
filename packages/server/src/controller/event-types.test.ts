// The event types the filter accepts are the ones docs/observability.md tables, and the reverse.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { EVENT_TYPES } from "./event-types";

test("docs/observability.md tables every event type the streams' filter accepts, and no other", () => {
  const doc = readFileSync(fileURLToPath(new URL("../../../../docs/observability.md", import.meta.url)), "utf8");
  const section = doc.slice(doc.indexOf("### The event log"), doc.indexOf("**The cursor.**"));
  const documented = [...section.matchAll(/^\| `([^`]+)`(?: \/ `([^`]+)`)? \|/gm)].flatMap((m) => [m[1]!, ...(m[2] ? [m[2]] : [])]);
  expect(documented.sort()).toEqual(Object.keys(EVENT_TYPES).sort());
});
