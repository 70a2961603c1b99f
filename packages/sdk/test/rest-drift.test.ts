// The drift check bites: tsc on copies of src/internal/rest-drift.ts and the
// two generated files it compares names the route and the key when the
// OpenAPI document's types drift from the SDK's REST JSON (an enum value
// renamed in a request, an INPUT_ONLY password no longer write-only in an
// answer).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { afterAll, expect, test } from "vitest";

const internal = join(import.meta.dirname, "../src/internal");
const read = (file: string) => readFileSync(join(internal, file), "utf8");
const openapi = read("openapi.ts");
const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/**
 * tsc's errors on rest-drift.ts with each of `documents` as the document's
 * types, by document: one program for all, so the libraries are read and
 * checked once (a program a case took seconds each).
 */
function driftErrors(documents: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "rest-drift-"));
  dirs.push(dir);
  const roots = documents.map((text, i) => {
    const fixture = join(dir, String(i));
    mkdirSync(fixture);
    for (const file of ["rest-drift.ts", "rest-types.ts"]) writeFileSync(join(fixture, file), read(file));
    writeFileSync(join(fixture, "openapi.ts"), text);
    return join(fixture, "rest-drift.ts");
  });
  const program = ts.createProgram(roots, {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2022.d.ts"],
    types: [],
  });
  return roots.map((root) =>
    ts
      .getPreEmitDiagnostics(program, program.getSourceFile(root))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))
      .join("\n"),
  );
}

/** The document's types with `from` replaced once by `to`. */
function drifted(from: string, to: string): string {
  expect(openapi).toContain(from);
  return openapi.replace(from, to);
}

test("a drift between the SDK's REST JSON and the document is a type error naming the route, the part and the key", () => {
  // Each case costs a check of every route (about 2.5 s): a request's and an
  // answer's; the committed files pass `tsc -p packages/sdk` itself.
  const [enumValue, writeOnly] = driftErrors([
    drifted('"Standard" | "Premium" | "Synchronous"', '"Standard" | "Gold" | "Synchronous"'),
    drifted("password?: $Write<string>;", "password?: string;"),
  ]);
  expect(enumValue).toMatch(/ReplicationService\.CreateReplication body\.config\.qos_tier: \\?"Premium\\?" only in the SDK/);
  expect(writeOnly).toMatch(/ConnectionService\.RegisterConnection answer\.password: only in the document/);
}, 60_000);
