// Control-plane SQL lives in store/; SQL against tenants' databases lives in
// the engine (DESIGN §6). So nothing else in the server's sources runs a
// query: not the transport, the services, the controller nor the
// orchestrator. The demo seeds its own clusters (demo/), and tests and their
// support (testing/) may query freely.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";

const SRC = fileURLToPath(new URL(".", import.meta.url));
const ALLOWED_FOLDERS = ["store", "demo", "testing"];

/** `.query(` or `.query<T>(` on a line of code (comments are skipped). */
function queryCalls(source: string): number[] {
  const lines: number[] = [];
  source.split("\n").forEach((line, i) => {
    const code = line.trim();
    if (code.startsWith("//") || code.startsWith("*") || code.startsWith("/*")) return;
    if (/\.query\s*[(<]/.test(code)) lines.push(i + 1);
  });
  return lines;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

describe("layering", () => {
  test("nothing outside store/ (and the demo, and tests) calls .query(", () => {
    const found = sources(SRC)
      .map((path) => relative(SRC, path))
      .filter((file) => !ALLOWED_FOLDERS.includes(file.split(sep)[0]!))
      .flatMap((file) => queryCalls(readFileSync(join(SRC, file), "utf8")).map((line) => `packages/server/src/${file.split(sep).join("/")}:${line}`));
    expect(found, `control-plane SQL belongs in store/, SQL on a tenant's database in the engine; found .query( in:\n${found.join("\n")}`).toEqual([]);
  });

  test("the check sees a query however it is written, and not in comments", () => {
    const source = [
      "// db.query(\"SELECT 1\") in a comment",
      "await db.query(\"SELECT 1\");",
      "const { rows } = await this.db.query<{ n: number }>(\"SELECT 1 AS n\");",
      "await this.deps.db",
      "  .query(\"SELECT 2\")",
      " * client.query() in a doc comment",
    ].join("\n");
    expect(queryCalls(source)).toEqual([2, 3, 5]);
  });
});
