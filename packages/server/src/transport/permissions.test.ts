// Every RPC needs exactly one permission (health and readiness none), the
// roles map to sets of them, and the table in docs/security.md is the one the
// code enforces. After a change of RPC_PERMISSIONS or ROLE_PERMISSIONS:
// `UPDATE_DOCS=1 npx vitest run packages/server/src/transport/permissions.test.ts`
// rewrites the table.
import { fileURLToPath } from "node:url";
import { httpRoutes, services } from "@heliosdb/replication-proto";
import { describe, expect, test } from "vitest";
import { expectDocBlock } from "../testing/doc-block";
import { holds, ROLE_PERMISSIONS, RPC_PERMISSIONS } from "./auth";

const DOC = fileURLToPath(new URL("../../../../docs/security.md", import.meta.url));
const START = "<!-- permissions: the table of transport/auth.ts; transport/permissions.test.ts checks it -->";
const END = "<!-- /permissions -->";
const PUBLIC = ["HealthService.Health", "HealthService.Ready"];
const rpcs = services.flatMap((s) => s.methods.map((m) => ({ name: `${s.name}.${m.name}`, method: m })));

function table(): string {
  const roles = Object.keys(ROLE_PERMISSIONS);
  const rows = rpcs
    .filter((r) => RPC_PERMISSIONS[r.name])
    .map((r) => {
      const route = httpRoutes(r.method.parent).find((h) => h.method === r.method);
      const permission = RPC_PERMISSIONS[r.name]!;
      const held = roles.map((role) => (holds({ permissions: new Set(ROLE_PERMISSIONS[role]) }, permission) ? "✓" : ""));
      return `| \`${r.name}\` | ${route ? `\`${route.verb} ${route.template}\`` : "stream: gRPC, gRPC-web, Connect"} | \`${permission}\` | ${held.join(" | ")} |`;
    });
  return [`| RPC | REST | permission | ${roles.join(" | ")} |`, `|---|---|---|${roles.map(() => "---|").join("")}`, ...rows].join("\n");
}

describe("permissions", () => {
  test("every RPC of the contract needs one permission, but health and readiness; every entry is an RPC", () => {
    const unmapped = rpcs.map((r) => r.name).filter((name) => !RPC_PERMISSIONS[name] && !PUBLIC.includes(name));
    expect(unmapped).toEqual([]);
    for (const name of PUBLIC) expect(RPC_PERMISSIONS[name]).toBeUndefined();
    expect(Object.keys(RPC_PERMISSIONS).filter((name) => !rpcs.some((r) => r.name === name))).toEqual([]);
  });

  test("Admin holds every permission; Viewer reads only; Operator manages no credentials and reads no audit log", () => {
    const all = new Set(Object.values(RPC_PERMISSIONS));
    for (const p of all) expect(holds({ permissions: new Set(ROLE_PERMISSIONS.Admin) }, p), p).toBe(true);
    expect(ROLE_PERMISSIONS.Viewer!.every((p) => p.endsWith(":read"))).toBe(true);
    for (const p of ["apikey:manage", "apikey:read", "audit:read"]) expect(ROLE_PERMISSIONS.Operator).not.toContain(p);
    for (const role of Object.keys(ROLE_PERMISSIONS)) for (const p of ROLE_PERMISSIONS[role]!) if (p !== "*") expect(all.has(p), `${role}: ${p}`).toBe(true);
  });

  test("docs/security.md holds the table the code enforces", () => {
    expectDocBlock(DOC, START, END, table());
  });
});
