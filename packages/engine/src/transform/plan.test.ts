import { create } from "@bufbuild/protobuf";
import {
  AnonymizePIITransform_AnonymizationMethod as Method,
  TransformSchema,
  type Transform,
} from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { UNCHANGED_TOAST, type Column, type ColumnValue, type Relation } from "../types";
import { hashValue } from "./anonymize";
import { decompressValue } from "./compress-columns";
import { MasterKeyProvider } from "./keys";
import { planRowTransforms, TransformValidationError } from "./plan";
import type { TokenVault } from "./token-vault";

const keys = new MasterKeyProvider(Buffer.alloc(32, 5));

const col = (name: string, typeName: string, typeOid: number, isKey = false): Column => ({ name, typeName, typeOid, isKey, notNull: isKey });

const users: Relation = {
  oid: 1, schema: "public", table: "users", replicaIdentity: "d",
  columns: [
    col("id", "bigint", 20, true),
    col("email", "text", 25),
    col("zip", "character varying(10)", 1043),
    col("birth", "date", 1082),
    col("active", "boolean", 16),
    col("bio", "text", 25),
  ],
};
const orders: Relation = {
  oid: 2, schema: "sales", table: "orders", replicaIdentity: "d",
  columns: [col("id", "integer", 23, true), col("email", "text", 25), col("note", "text", 25)],
};
const countries: Relation = {
  oid: 3, schema: "public", table: "countries", replicaIdentity: "d",
  columns: [col("code", "character(2)", 1042, true), col("name", "text", 25)],
};
const relations = [users, orders, countries];

const anonymize = (method: Method, ...columns: string[]): Transform =>
  create(TransformSchema, { transformType: { case: "anonymizePii", value: { method, columns } } });
const compress = (...columns: string[]): Transform =>
  create(TransformSchema, { transformType: { case: "compressColumns", value: { columns } } });

function memoryVault() {
  const entries = new Map<string, string>();
  const vault: TokenVault = {
    async store(_tenant, batch) {
      for (const [k, v] of batch) entries.set(k, v);
    },
    async detokenize(_tenant, token) {
      return entries.get(token) ?? null;
    },
  };
  return { vault, entries };
}

async function problemsOf(transforms: Transform[], vault?: TokenVault) {
  try {
    await planRowTransforms("tenant", transforms, relations, { keys, vault });
  } catch (e) {
    expect(e).toBeInstanceOf(TransformValidationError);
    return (e as TransformValidationError).problems;
  }
  throw new Error("expected a TransformValidationError");
}

test("a table without transforms returns the very same row array", async () => {
  const plan = await planRowTransforms("tenant", [anonymize(Method.HASH, "users.email")], relations, { keys });
  const row = ["1", "x"];
  const table = plan.forRelation(countries);
  expect(table.transformed).toBe(false);
  expect(table.transform(row)).toBe(row);
  expect(table.targetColumns).toBe(countries.columns);
});

test("columns resolve by bare name (every table), table.column and schema.table.column", async () => {
  const plan = await planRowTransforms(
    "tenant",
    [anonymize(Method.HASH, "email"), anonymize(Method.REDACT, "sales.orders.note"), anonymize(Method.GENERALIZE, "users.zip", "birth")],
    relations,
    { keys },
  );
  const hashKey = await keys.key("tenant", "hash");
  const u = plan.forRelation(users);
  const input: ColumnValue[] = ["7", "a@b.c", "94105", "1990-07-14", "t", UNCHANGED_TOAST];
  const out = u.transform(input);
  expect(out).toEqual(["7", hashValue(hashKey, "a@b.c"), "941**", "1990-07-01", "t", UNCHANGED_TOAST]);
  expect(out).not.toBe(input);
  expect(input[1]).toBe("a@b.c"); // the input is not modified
  expect(u.targetColumns.map((c) => `${c.name}:${c.typeName}:${c.typeOid}`)).toEqual([
    "id:bigint:20", "email:text:25", "zip:character varying(10):1043", "birth:date:1082", "active:boolean:16", "bio:text:25",
  ]);
  // The same email hashes the same in another table, so joins on it still work.
  expect(plan.forRelation(orders).transform(["1", "a@b.c", "secret"])).toEqual(["1", hashValue(hashKey, "a@b.c"), "REDACTED"]);
  expect(u.transform(["8", null, null, null, null, null])).toEqual(["8", null, null, null, null, null]);
});

test("key columns may be hashed or tokenized, and their target type becomes text", async () => {
  const { vault, entries } = memoryVault();
  const plan = await planRowTransforms("tenant", [anonymize(Method.HASH, "users.id"), anonymize(Method.TOKENIZE, "orders.id")], relations, { keys, vault });
  expect(plan.forRelation(users).targetColumns[0]).toEqual({ ...users.columns[0], typeName: "text", typeOid: 25 });
  const token = plan.forRelation(orders).transform(["42", "e", "n"])[0] as string;
  expect(token).toMatch(/^tok_/);
  expect(entries.size).toBe(0);
  await plan.flush();
  expect(entries.get(token)).toBe("42");
});

test("CompressColumns writes bytea that decompresses to the value", async () => {
  const plan = await planRowTransforms("tenant", [compress("bio")], relations, { keys });
  const u = plan.forRelation(users);
  expect(u.targetColumns[5]).toMatchObject({ name: "bio", typeName: "bytea", typeOid: 17 });
  const out = u.transform(["1", null, null, null, null, "a long biography"]);
  expect(decompressValue(out[5] as string)).toBe("a long biography");
});

test("every problem is reported at once, with its field path", async () => {
  const problems = await problemsOf([
    anonymize(Method.HASH, "email", "phone"),
    create(TransformSchema, { transformType: { case: "filter", value: { table: "users", expression: "id > 0" } } }),
    anonymize(Method.REDACT, "users.id", "users.nope", "ghosts.name"),
    anonymize(Method.GENERALIZE, "active"),
    compress("countries.code"),
  ]);
  expect(problems.map((p) => p.path)).toEqual([
    "transforms[0].config.columns[1]",
    "transforms[2].config.columns[0]",
    "transforms[2].config.columns[1]",
    "transforms[2].config.columns[2]",
    "transforms[3].config.columns[0]",
    "transforms[4].config.columns[0]",
  ]);
  const [phone, keyRedact, nope, ghosts, active, keyCompress] = problems.map((p) => p.message);
  expect(phone).toBe('No replicated table has a column "phone".');
  expect(keyRedact).toMatch(/public\.users\.id is part of the table's key .*only Hash or Tokenize.*not Redact/);
  expect(nope).toBe('Table public.users has no column "nope".');
  expect(ghosts).toMatch(/no replicated table is named "ghosts"/);
  expect(active).toMatch(/Generalize does not support type boolean/);
  expect(keyCompress).toMatch(/public\.countries\.code is part of the table's key.*not CompressColumns/);
});

test("tokenizing without a vault, an unknown method, empty lists and double transforms are errors", async () => {
  const problems = await problemsOf([
    anonymize(Method.TOKENIZE, "email"),
    anonymize(99 as Method, "email"),
    compress(),
    anonymize(Method.HASH, "users.bio"),
    compress("bio"),
    create(TransformSchema, {}),
  ]);
  expect(problems).toEqual([
    { path: "transforms[0].config.method", message: expect.stringMatching(/token vault/) },
    { path: "transforms[1].config.method", message: expect.stringMatching(/99 is not an anonymization method/) },
    { path: "transforms[2].config.columns", message: "CompressColumns names no columns." },
    { path: "transforms[4].config.columns[0]", message: expect.stringMatching(/already transformed by transforms\[3\]/) },
    { path: "transforms[5]", message: expect.stringMatching(/no type/) },
  ]);
  expect(String(new TransformValidationError(problems).message)).toContain("transforms[2].config.columns: CompressColumns names no columns.");
});

test("Filter and Aggregate are left to their own stage", async () => {
  const plan = await planRowTransforms(
    "tenant",
    [
      create(TransformSchema, { transformType: { case: "filter", value: { table: "nope", expression: "x" } } }),
      create(TransformSchema, { transformType: { case: "aggregate", value: { table: "nope" } } }),
    ],
    relations,
    { keys },
  );
  expect(plan.hasRowTransforms).toBe(false);
  expect([...plan.relations.values()].every((r) => !r.transformed)).toBe(true);
});

test("a re-described relation is re-planned and re-validated", async () => {
  const plan = await planRowTransforms("tenant", [anonymize(Method.REDACT, "note")], relations, { keys });
  expect(plan.forRelation({ ...orders, columns: [...orders.columns] })).toBe(plan.relations.get(2));
  const altered: Relation = { ...orders, columns: [...orders.columns, col("extra", "text", 25)] };
  expect(plan.forRelation(altered).transform(["1", "e", "n", "x"])).toEqual(["1", "e", "REDACTED", "x"]);
  const keyed: Relation = { ...orders, columns: orders.columns.map((c) => (c.name === "note" ? { ...c, isKey: true } : c)) };
  expect(() => plan.forRelation(keyed)).toThrow(TransformValidationError);
  const added: Relation = { oid: 9, schema: "public", table: "notes", replicaIdentity: "d", columns: [col("note", "uuid", 2950)] };
  expect(plan.forRelation(added).transform(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"])).toEqual(["00000000-0000-0000-0000-000000000000"]);
});

test("a bad value names the column but not the value", async () => {
  const plan = await planRowTransforms("tenant", [anonymize(Method.GENERALIZE, "birth")], relations, { keys });
  const u = plan.forRelation(users);
  expect(() => u.transform(["1", null, null, "17/05/1990", null, null])).toThrow(/public\.users\.birth/);
  expect(() => u.transform(["1", null, null, "17/05/1990", null, null])).not.toThrow(/1990/);
});
