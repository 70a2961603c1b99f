import { create, toBinary } from "@bufbuild/protobuf";
import { ReplicationSchema } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { shared } from "../services/views";
import { encodedOnce } from "./encoded";

test("a shared (frozen) message is encoded once; any other every time", () => {
  let encodings = 0;
  const encode = encodedOnce((m: object) => (encodings++, toBinary(ReplicationSchema, m as never)));
  const fresh = create(ReplicationSchema, { id: "r1", currentState: { throughput: { rowsPerSecond: 5 } } });
  expect(encode(fresh)).toEqual(encode(fresh));
  expect(encodings).toBe(2);
  const answered = shared(create(ReplicationSchema, { id: "r2", currentState: { throughput: { rowsPerSecond: 5 } } }));
  const first = encode(answered);
  expect(encode(answered)).toBe(first);
  expect(encodings).toBe(3);
});

test("shared freezes a message through and through: nothing of it can change under a call that holds it", () => {
  const message = shared(create(ReplicationSchema, { id: "r3", config: { tableFilter: ["a"] }, currentState: { throughput: { rowsPerSecond: 1 } } }));
  expect(() => void ((message as { id: string }).id = "other")).toThrow(TypeError);
  expect(() => void (message.currentState!.throughput!.rowsPerSecond = 2)).toThrow(TypeError);
  expect(() => void message.config!.tableFilter.push("b")).toThrow(TypeError);
});
