// The OpenAPI document says what the server enforces, so that a client made
// from it does not send what the server refuses: every id the document marks
// `format: uuid` is refused otherwise (400 INVALID_REQUEST naming it, before
// any lookup), and every List operation's page_size bound is the server's.
// Operations are read from the committed document, not listed here.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { startHarness, type Harness } from "./harness";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const doc = parse(readFileSync(fileURLToPath(new URL("../../openapi/openapi.yaml", import.meta.url)), "utf8")) as Obj;
// Services not implemented yet (501 whatever the request) are left out until their issues land: none now.
const LATER = new Set<string>([]);
const operations = Object.entries(doc.paths as Obj).flatMap(([path, item]) =>
  ["get", "post", "patch", "delete"].filter((verb) => item[verb] && !LATER.has(item[verb].tags[0])).map((verb) => ({ path, verb, op: item[verb] as Obj })),
);
const VALID_ID = "550e8400-e29b-41d4-a716-446655440777";

let h: Harness;
let token: string;

beforeAll(async () => {
  h = await startHarness();
  token = await h.token();
}, 120_000);

afterAll(async () => {
  await h?.close();
}, 60_000);

async function call(verb: string, path: string) {
  const res = await fetch(`${h.app.urls.rest.replace(/\/v1$/, "")}${path}`, {
    method: verb.toUpperCase(),
    headers: { authorization: `Bearer ${token}`, ...(verb === "get" || verb === "delete" ? {} : { "content-type": "application/json" }) },
    ...(verb === "get" || verb === "delete" ? {} : { body: "{}" }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe("format: uuid", () => {
  const cases = operations.flatMap(({ path, verb, op }) =>
    ((op.parameters ?? []) as Obj[]).filter((p) => p.in === "path" && p.schema?.format === "uuid").map((p) => ({ path, verb, name: p.name as string, id: op.operationId as string })),
  );

  test("the document marks the ids", () => {
    expect(cases.length).toBeGreaterThanOrEqual(12);
  });

  test.each(cases.map((c) => [`${c.id} {${c.name}}`, c] as const))("%s: another value is a 400 INVALID_REQUEST naming it", async (_, c) => {
    const path = c.path.replace(/\{([^}]+)\}/g, (_, name: string) => (name === c.name ? "not-a-uuid" : name === "tenant_id" ? "tenant-123" : VALID_ID));
    const res = await call(c.verb, path);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.code).toBe("INVALID_REQUEST");
    expect(res.body.error.details.violations).toContainEqual({ field: c.name, description: 'not a UUID: "not-a-uuid"' });
  });
});

describe("pagination", () => {
  const lists = operations.filter(({ op }) => ((op.parameters ?? []) as Obj[]).some((p) => p.name === "page_size"));

  test.each(lists.map((l) => [l.op.operationId as string, l] as const))("%s: page_size at the document's maximum is served, one more is refused", async (_, { path, op }) => {
    const max = (op.parameters as Obj[]).find((p) => p.name === "page_size")!.schema.maximum as number;
    expect(max).toBe(100);
    const url = path.replace("{tenant_id}", "tenant-123");
    expect((await call("get", `${url}?page_size=${max}`)).status).toBe(200);
    const over = await call("get", `${url}?page_size=${max + 1}`);
    expect(over.status).toBe(400);
    expect(over.body.error.details.violations).toContainEqual(expect.objectContaining({ field: "page_size" }));
  });
});
