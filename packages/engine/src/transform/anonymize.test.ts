// Each anonymization method on each type it supports. Inputs are produced by
// PostgreSQL itself (its text output), and Redact/Generalize outputs are
// written back into a column of the same type, to prove PostgreSQL accepts them.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startCluster, type Cluster } from "../testing/clusters";
import type { Column } from "../types";
import { anonymizerFor, hashValue, tokenValue, Tokenizer, type AnonymizeMethod } from "./anonymize";
import { MasterKeyProvider } from "./keys";
import type { TokenVault } from "./token-vault";

let cluster: Cluster;
let client: pg.Client;
beforeAll(async () => {
  cluster = await startCluster();
  client = await cluster.connect();
  // An offset with minutes, to exercise timestamptz text with "+05:30".
  await client.query("SET TimeZone = 'Asia/Kolkata'");
}, 60_000);
afterAll(async () => {
  await client?.end();
  await cluster?.stop();
});

let tableCount = 0;
/** A one-column table of `type`; returns the column as the catalog describes it. */
async function columnOf(type: string): Promise<{ table: string; column: Column }> {
  const table = `t${tableCount++}`;
  await client.query(`CREATE TABLE ${table} (v ${type})`);
  const { rows } = await client.query<{ oid: number; name: string }>(
    `SELECT atttypid::int AS oid, format_type(atttypid, atttypmod) AS name
       FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'v'`,
    [table],
  );
  const row = rows[0]!;
  return { table, column: { name: "v", typeOid: row.oid, typeName: row.name, isKey: false, notNull: false } };
}

/** Stores `value` in the table and returns what PostgreSQL's output function writes for it. */
async function roundTrip(table: string, value: string): Promise<string> {
  await client.query(`TRUNCATE ${table}`);
  await client.query(`INSERT INTO ${table} (v) VALUES ($1)`, [value]);
  // Raw text from the type's output function (a ::text cast differs for inet),
  // which is what COPY and pgoutput carry.
  const { rows } = await client.query<{ v: string }>({
    text: `SELECT v FROM ${table}`,
    types: { getTypeParser: () => (text: string) => text },
  });
  return rows[0]!.v;
}

async function apply(method: AnonymizeMethod, type: string, input: string) {
  const { table, column } = await columnOf(type);
  const sourceText = await roundTrip(table, input); // the value as replication carries it
  const anonymizer = anonymizerFor(method, column, {});
  if ("unsupported" in anonymizer) return { unsupported: anonymizer.unsupported };
  const output = anonymizer.fn(sourceText);
  return { output, stored: await roundTrip(table, output) };
}

// [type, input, expected output, what PostgreSQL stores (when it normalizes)]
const redactCases: [string, string, string, string?][] = [
  ["text", "alice@example.com", "REDACTED"],
  ["character varying(5)", "94105", "REDAC"],
  ["varchar", "someone", "REDACTED"],
  ["character(3)", "abc", "RED"],
  ["char(12)", "abc", "REDACTED", "REDACTED    "],
  ["name", "alice", "REDACTED"],
  ["smallint", "42", "0"],
  ["integer", "42", "0"],
  ["bigint", "42", "0"],
  ["numeric(10,2)", "1234.56", "0", "0.00"],
  ["numeric", "1234.56", "0"],
  ["real", "1.5", "0"],
  ["double precision", "1.5", "0"],
  ["boolean", "true", "false", "f"],
  ["date", "2024-05-17", "1970-01-01"],
  ["timestamp", "2024-05-17 13:45:12.123456", "1970-01-01 00:00:00"],
  ["timestamp(3) with time zone", "2024-05-17 13:45:12.123+02", "1970-01-01 00:00:00+00", "1970-01-01 05:30:00+05:30"],
  ["time", "13:45:12", "00:00:00"],
  ["time with time zone", "13:45:12+02", "00:00:00+00"],
  ["uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000"],
  ["json", '{"email": "a@b.c"}', "null"],
  ["jsonb", '{"email": "a@b.c"}', "null"],
  ["bytea", "\\xdeadbeef", "\\x"],
  ["inet", "192.168.1.77", "0.0.0.0"],
  ["cidr", "10.1.0.0/16", "0.0.0.0/32"],
];

describe("Redact", () => {
  test.each(redactCases)("%s: %s → %s, accepted by PostgreSQL", async (type, input, expected, stored) => {
    const result = await apply("redact", type, input);
    expect(result).toEqual({ output: expected, stored: stored ?? expected });
  });

  test("types without a mask are unsupported", async () => {
    for (const type of ["integer[]", "point", "interval", "money"]) {
      expect(await apply("redact", type, type === "integer[]" ? "{1}" : type === "point" ? "(1,2)" : "1")).toHaveProperty("unsupported");
    }
  });
});

const generalizeCases: [string, string, string, string?][] = [
  ["text", "94105-1234", "941*******"],
  ["character varying(5)", "94105", "941**"],
  ["text", "ab", "ab"],
  ["text", "Zürich😀x", "Zür*****"],
  ["character(6)", "ab", "ab ***"], // PostgreSQL pads char(n) output
  ["smallint", "1234", "1230"],
  ["smallint", "-32768", "-32768"],
  ["integer", "-15", "-20"],
  ["integer", "7", "0"],
  ["bigint", "9223372036854775807", "9223372036854775800"],
  ["bigint", "-9223372036854775808", "-9223372036854775808"],
  ["numeric(10,2)", "1234.56", "1230", "1230.00"],
  ["numeric(3,2)", "-9.99", "-9.99"],
  ["numeric", "-0.5", "-10"],
  ["numeric", "123456789012345678901234567890.5", "123456789012345678901234567890"],
  ["numeric", "NaN", "NaN"],
  ["real", "123.5", "120"],
  ["double precision", "-0.25", "-10"],
  ["double precision", "1e+300", "1e+300"],
  ["double precision", "Infinity", "Infinity"],
  ["date", "2024-05-17", "2024-05-01"],
  ["date", "0044-03-15 BC", "0044-03-01 BC"],
  ["date", "infinity", "infinity"],
  ["timestamp", "2024-05-17 13:45:12.123456", "2024-05-01 00:00:00"],
  ["timestamp with time zone", "2024-05-17 13:45:12.5+00", "2024-05-01 00:00:00+05:30"],
  ["inet", "192.168.1.77", "192.168.1.0"],
  ["inet", "192.168.1.77/16", "192.168.1.0"],
  ["inet", "2001:db8:abcd:12::1", "2001:db8:abcd::"],
  ["inet", "::ffff:1.2.3.4", "0:0:0::", "::"],
  ["cidr", "192.168.1.128/25", "192.168.1.0/24"],
  ["cidr", "10.0.0.0/8", "10.0.0.0/8"],
  ["cidr", "2001:db8:abcd:1200::/56", "2001:db8:abcd::/48"],
];

describe("Generalize", () => {
  test.each(generalizeCases)("%s: %s → %s, accepted by PostgreSQL", async (type, input, expected, stored) => {
    const result = await apply("generalize", type, input);
    expect(result).toEqual({ output: expected, stored: stored ?? expected });
  });

  test("booleans, uuids, json and bytea cannot be generalized", async () => {
    for (const [type, value] of [["boolean", "true"], ["uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], ["jsonb", "{}"], ["bytea", "\\x00"], ["time", "12:00:00"]] as const) {
      expect(await apply("generalize", type, value)).toHaveProperty("unsupported");
    }
  });

  test("a date outside ISO DateStyle is an error that does not echo the value", async () => {
    const { column } = await columnOf("date");
    const anonymizer = anonymizerFor("generalize", column, {});
    if ("unsupported" in anonymizer) throw new Error("date must be supported");
    expect(() => anonymizer.fn("05/17/2024")).toThrow(/ISO DateStyle/);
    expect(() => anonymizer.fn("05/17/2024")).not.toThrow(/05\/17/);
  });
});

describe("Hash", () => {
  const keys = new MasterKeyProvider(Buffer.alloc(32, 7));

  test("is hex HMAC-SHA-256, deterministic, and differs per tenant", async () => {
    const a = await keys.key("tenant-a", "hash");
    const b = await keys.key("tenant-b", "hash");
    const h = hashValue(a, "alice@example.com");
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(hashValue(a, "alice@example.com")).toBe(h);
    expect(hashValue(await keys.key("tenant-a", "hash"), "alice@example.com")).toBe(h);
    expect(hashValue(b, "alice@example.com")).not.toBe(h);
    expect(hashValue(a, "bob@example.com")).not.toBe(h);
  });

  test("works on any type, writes text, and PostgreSQL takes it as text", async () => {
    const key = await keys.key("tenant-a", "hash");
    for (const type of ["integer", "uuid", "jsonb", "integer[]", "boolean"]) {
      const { column } = await columnOf(type);
      const anonymizer = anonymizerFor("hash", column, { hashKey: key });
      if ("unsupported" in anonymizer) throw new Error(`hash must support ${type}`);
      expect(anonymizer.outputType).toEqual({ typeName: "text", typeOid: 25 });
      expect(anonymizer.fn("1")).toBe(hashValue(key, "1"));
    }
    const { table } = await columnOf("text");
    expect(await roundTrip(table, hashValue(key, "x"))).toBe(hashValue(key, "x"));
  });
});

describe("Tokenize", () => {
  const keys = new MasterKeyProvider(Buffer.alloc(32, 9));

  function memoryVault(fail = false) {
    const stored: Map<string, string>[] = [];
    const vault: TokenVault = {
      async store(_tenant, entries) {
        if (fail) throw new Error("vault down");
        stored.push(new Map(entries));
      },
      async detokenize() {
        return null;
      },
    };
    return { vault, stored };
  }

  test("tokens are deterministic, 160-bit, and per tenant", async () => {
    const key = await keys.key("tenant-a", "tokenize");
    const token = tokenValue(key, "4111-1111-1111-1111");
    expect(token).toMatch(/^tok_[a-z2-7]{32}$/);
    expect(tokenValue(key, "4111-1111-1111-1111")).toBe(token);
    expect(tokenValue(await keys.key("tenant-b", "tokenize"), "4111-1111-1111-1111")).not.toBe(token);
  });

  test("new pairs are queued once and flushed to the vault; a failed flush keeps them", async () => {
    const key = await keys.key("tenant-a", "tokenize");
    const { vault, stored } = memoryVault();
    const tokenizer = new Tokenizer("tenant-a", key, vault);
    const t1 = tokenizer.tokenize("alice");
    tokenizer.tokenize("alice");
    const t2 = tokenizer.tokenize("bob");
    expect(tokenizer.pendingCount).toBe(2);
    await tokenizer.flush();
    expect(stored).toEqual([new Map([[t1, "alice"], [t2, "bob"]])]);
    tokenizer.tokenize("alice"); // already in the vault: not queued again
    expect(tokenizer.pendingCount).toBe(0);
    await tokenizer.flush();
    expect(stored).toHaveLength(1);

    const failing = new Tokenizer("tenant-a", key, memoryVault(true).vault);
    failing.tokenize("carol");
    await expect(failing.flush()).rejects.toThrow("vault down");
    expect(failing.pendingCount).toBe(1);
  });
});
