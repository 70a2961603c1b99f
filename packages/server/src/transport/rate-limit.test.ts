// The tier table of docs/security.md is the one the server enforces (spec
// §7.2). After a change of TIER_LIMITS:
// `UPDATE_DOCS=1 npx vitest run packages/server/src/transport/rate-limit.test.ts`.
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { TIERS } from "../controller/api-keys";
import { expectDocBlock } from "../testing/doc-block";
import { TIER_LIMITS } from "./rate-limit";

const DOC = fileURLToPath(new URL("../../../../docs/security.md", import.meta.url));

describe("rate-limit tiers", () => {
  test("every tier an API key or a JWT may name has a bucket", () => {
    expect(Object.keys(TIER_LIMITS).sort()).toEqual([...TIERS].sort());
  });

  test("docs/security.md holds the table the code enforces", () => {
    const rows = Object.entries(TIER_LIMITS).map(([tier, b]) => `| ${tier} | ${b.perMinute.toLocaleString("en-US")} | ${b.burst.toLocaleString("en-US")} |`);
    expectDocBlock(
      DOC,
      "<!-- tiers: TIER_LIMITS of transport/rate-limit.ts; transport/rate-limit.test.ts checks it -->",
      "<!-- /tiers -->",
      ["| tier | requests per minute | burst |", "|---|---:|---:|", ...rows].join("\n"),
    );
  });
});
