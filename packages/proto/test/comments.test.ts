// Every service, RPC, message, field, enum, enum value, oneof and option of the
// contract carries a comment: the comments become the OpenAPI document and
// the SDKs' documentation. Read from buf's image, which keeps source info.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));

interface Location {
  path?: number[];
  leadingComments?: string;
}
interface Described {
  name: string;
  field?: Described[];
  nestedType?: Described[];
  enumType?: Described[];
  oneofDecl?: Described[];
  value?: Described[];
  method?: Described[];
  options?: { mapEntry?: boolean };
}
interface File {
  name: string;
  messageType?: Described[];
  enumType?: Described[];
  service?: Described[];
  extension?: Described[];
  sourceCodeInfo: { location: Location[] };
}

// FileDescriptorProto and DescriptorProto field numbers, as source-info paths use them.
const children: [keyof Described, number, string][] = [
  ["field", 2, "field"],
  ["nestedType", 3, "message"],
  ["enumType", 4, "enum"],
  ["oneofDecl", 8, "oneof"],
];

function* elements(file: File): Generator<[string, number[]]> {
  function* message(m: Described, path: number[], scope: string): Generator<[string, number[]]> {
    if (m.options?.mapEntry) return;
    yield [`message ${scope}${m.name}`, path];
    for (const [key, number, kind] of children) {
      const list = (m[key] ?? []) as Described[];
      for (const [i, child] of list.entries()) {
        const childPath = [...path, number, i];
        if (kind === "message") yield* message(child, childPath, `${scope}${m.name}.`);
        else if (kind === "enum") yield* enumeration(child, childPath, `${scope}${m.name}.`);
        else if (!(kind === "oneof" && child.name.startsWith("_"))) yield [`${kind} ${scope}${m.name}.${child.name}`, childPath];
      }
    }
  }
  function* enumeration(e: Described, path: number[], scope: string): Generator<[string, number[]]> {
    yield [`enum ${scope}${e.name}`, path];
    for (const [i, v] of (e.value ?? []).entries()) yield [`value ${scope}${e.name}.${v.name}`, [...path, 2, i]];
  }
  for (const [i, m] of (file.messageType ?? []).entries()) yield* message(m, [4, i], "");
  for (const [i, e] of (file.enumType ?? []).entries()) yield* enumeration(e, [5, i], "");
  for (const [i, s] of (file.service ?? []).entries()) {
    yield [`service ${s.name}`, [6, i]];
    for (const [j, rpc] of (s.method ?? []).entries()) yield [`rpc ${s.name}.${rpc.name}`, [6, i, 2, j]];
  }
  for (const [i, x] of (file.extension ?? []).entries()) yield [`option ${x.name}`, [7, i]];
}

test("every element of the contract has a comment", () => {
  const image = JSON.parse(
    execFileSync("node_modules/.bin/buf", ["build", "--path", "proto/heliosdb", "--exclude-imports", "-o", "-#format=json"], {
      cwd: root,
      encoding: "utf8",
    }),
  ) as { file: File[] };
  // The public contract's 12 files and the engine's internal batch format.
  expect(image.file.length).toBe(13);
  const missing: string[] = [];
  let checked = 0;
  for (const file of image.file) {
    const comments = new Map(
      file.sourceCodeInfo.location.map((l) => [(l.path ?? []).join("."), l.leadingComments?.trim() ?? ""]),
    );
    for (const [name, path] of elements(file)) {
      checked++;
      if (!comments.get(path.join("."))) missing.push(`${file.name}: ${name}`);
    }
  }
  expect(checked).toBeGreaterThan(400);
  expect(missing).toEqual([]);
});
