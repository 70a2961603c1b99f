// The contract keeps every name and number of spec §3.1, so code written
// against the spec compiles against our generated code.
import { ScalarType, type DescField } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { readSpecProto, registry, type SpecField } from "./spec";

const pkg = "heliosdb.replication.v1";
const spec = readSpecProto();

describe("spec §3.1", () => {
  test("the parser read the whole of §3.1", () => {
    expect([...spec.services.keys()]).toEqual(["ReplicationService", "FailoverService", "MigrationService"]);
    expect(spec.messages.size).toBe(27);
    expect(spec.enums.size).toBe(4);
  });

  for (const [serviceName, rpcs] of spec.services) {
    test(`service ${serviceName} has the spec's RPCs with the spec's types`, () => {
      const service = registry.getService(`${pkg}.${serviceName}`);
      expect(service, serviceName).toBeDefined();
      for (const rpc of rpcs) {
        const method = service!.methods.find((m) => m.name === rpc.name);
        expect(method, `${serviceName}.${rpc.name}`).toBeDefined();
        expect(method!.input.typeName).toBe(qualified(rpc.input));
        expect(method!.output.typeName).toBe(qualified(rpc.output));
        expect(method!.methodKind).toBe(rpc.serverStreaming ? "server_streaming" : "unary");
      }
    });
  }

  for (const [messageName, fields] of spec.messages) {
    test(`message ${messageName} keeps the spec's fields`, () => {
      const message = registry.getMessage(`${pkg}.${messageName}`);
      expect(message, messageName).toBeDefined();
      for (const specField of fields) {
        const field = message!.fields.find((f) => f.number === specField.number);
        expect(field?.name, `${messageName} field ${specField.number}`).toBe(specField.name);
        expect(typeOf(field!), `${messageName}.${specField.name}`).toBe(specType(specField));
      }
    });
  }

  for (const [enumName, values] of spec.enums) {
    test(`enum ${enumName} keeps the spec's values`, () => {
      const desc = registry.getEnum(`${pkg}.${enumName}`);
      expect(desc, enumName).toBeDefined();
      for (const [name, number] of values) {
        expect(desc!.values.find((v) => v.name === name)?.number, `${enumName}.${name}`).toBe(number);
      }
    });
  }

  test("every message the spec's services reference is defined", () => {
    for (const rpcs of spec.services.values()) {
      for (const rpc of rpcs) {
        for (const type of [rpc.input, rpc.output]) expect(registry.getMessage(qualified(type)), type).toBeDefined();
      }
    }
  });
});

function qualified(type: string): string {
  return type.startsWith("google.") ? type : `${pkg}.${type}`;
}

// The spec's spelling of a field's type, e.g. "repeated Transform", "map<string, string>".
function specType(field: SpecField): string {
  const type = field.type.replace(/^map<(\w+), ?(\w+)>$/, "map<$1, $2>");
  return field.repeated ? `repeated ${type}` : type;
}

function typeOf(field: DescField): string {
  const scalar = (s: ScalarType) => ScalarType[s].toLowerCase();
  const named = (d: { typeName: string; name: string } | undefined) =>
    d!.typeName.startsWith("google.") ? d!.typeName : d!.name;
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar);
    case "enum":
      return named(field.enum);
    case "message":
      return named(field.message);
    case "list":
      return `repeated ${field.listKind === "scalar" ? scalar(field.scalar) : named(field.listKind === "enum" ? field.enum : field.message)}`;
    case "map":
      return `map<${scalar(field.mapKey)}, ${field.mapKind === "scalar" ? scalar(field.scalar) : named(field.mapKind === "enum" ? field.enum : field.message)}>`;
  }
}
