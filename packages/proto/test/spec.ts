// Readers of the spec fixtures beside this file: the §3.1 proto text, copied
// verbatim, and the JSON examples of §2. Tests compare the contract with them.
import { readFileSync } from "node:fs";
import { createRegistry, type DescFile, type DescMethod } from "@bufbuild/protobuf";
import { services } from "../src/services";

export interface SpecField {
  name: string;
  number: number;
  type: string;
  repeated: boolean;
}
export interface SpecRpc {
  name: string;
  input: string;
  output: string;
  serverStreaming: boolean;
}
export interface SpecProto {
  services: Map<string, SpecRpc[]>;
  /** Messages by dotted name within the package (nested: "Outer.Inner"). */
  messages: Map<string, SpecField[]>;
  /** Enums by dotted name within the package, with their values. */
  enums: Map<string, Map<string, number>>;
}

/** Parses the spec's §3.1 proto text: enough of proto3 for what the spec writes. */
export function readSpecProto(): SpecProto {
  const text = readFileSync(new URL("spec-3.1.proto.txt", import.meta.url), "utf8");
  const spec: SpecProto = { services: new Map(), messages: new Map(), enums: new Map() };
  const stack: { kind: string; name: string }[] = [];
  const scope = () => stack.filter((b) => b.kind === "message" || b.kind === "enum").map((b) => b.name);
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\/\/.*$/, "").trim();
    let m: RegExpMatchArray | null;
    if (!line || /^(syntax|package|import) /.test(line)) continue;
    if ((m = line.match(/^(service|message|enum|oneof) (\w+) \{$/))) {
      stack.push({ kind: m[1]!, name: m[2]! });
      const name = scope().join(".");
      if (m[1] === "service") spec.services.set(m[2]!, []);
      if (m[1] === "message") spec.messages.set(name, []);
      if (m[1] === "enum") spec.enums.set(name, new Map());
    } else if (line === "}") {
      stack.pop();
    } else if ((m = line.match(/^rpc (\w+)\((\w+)\) returns \((stream )?([\w.]+)\);$/))) {
      const service = stack[stack.length - 1]!.name;
      spec.services.get(service)!.push({ name: m[1]!, input: m[2]!, output: m[4]!, serverStreaming: !!m[3] });
    } else if ((m = line.match(/^(\w+) = (\d+);$/)) && stack[stack.length - 1]?.kind === "enum") {
      spec.enums.get(scope().join("."))!.set(m[1]!, Number(m[2]));
    } else if ((m = line.match(/^(repeated )?(map<\w+, ?\w+>|[\w.]+) (\w+) = (\d+);$/))) {
      const message = stack.filter((b) => b.kind === "message").map((b) => b.name).join(".");
      spec.messages.get(message)!.push({ name: m[3]!, number: Number(m[4]), type: m[2]!, repeated: !!m[1] });
    } else {
      throw new Error(`spec-3.1.proto.txt: cannot read "${line}"`);
    }
  }
  return spec;
}

export interface SpecExample {
  name: string;
  section: string;
  method: string;
  path: string;
  rpc: string;
  kind: "request" | "response" | "query";
  status?: number;
  elided?: string[];
  json?: Record<string, unknown>;
  query?: string;
}

/** Every request, response and query example of spec §2, as the spec writes it. */
export const specExamples: SpecExample[] = JSON.parse(
  readFileSync(new URL("spec-examples.json", import.meta.url), "utf8"),
);

/** The method a spec example's `rpc` names, e.g. "heliosdb.replication.v1.ReplicationService/GetReplication". */
export function methodOf(rpc: string): DescMethod {
  const [service, method] = rpc.split("/");
  const found = services.find((s) => s.typeName === service)?.methods.find((m) => m.name === method);
  if (!found) throw new Error(`no RPC ${rpc} in the contract`);
  return found;
}

/** A registry of every type of the contract, with the files it imports. */
export const registry = createRegistry(...withDependencies(services.map((s) => s.file)));

function withDependencies(files: DescFile[], seen = new Set<DescFile>()): DescFile[] {
  for (const file of files) {
    if (seen.has(file)) continue;
    seen.add(file);
    withDependencies(file.dependencies, seen);
  }
  return [...seen];
}
