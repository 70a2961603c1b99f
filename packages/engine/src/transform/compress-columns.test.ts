import { from as copyFrom } from "pg-copy-streams";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startCluster, type Cluster } from "../testing/clusters";
import { compressValue, decompressValue } from "./compress-columns";

let cluster: Cluster;
let client: pg.Client;
beforeAll(async () => {
  cluster = await startCluster();
  client = await cluster.connect();
  await client.query("CREATE TABLE docs (id int PRIMARY KEY, body bytea)");
}, 60_000);
afterAll(async () => {
  await client?.end();
  await cluster?.stop();
});

const large = `${"Größe ✓ 😀 lorem ipsum dolor sit amet, ".repeat(2000)}end`;

test("a value compresses to bytea hex text and back", () => {
  const compressed = compressValue(large);
  expect(compressed).toMatch(/^\\x[0-9a-f]+$/);
  expect(compressed.length).toBeLessThan(Buffer.byteLength(large) / 10);
  expect(decompressValue(compressed)).toBe(large);
  expect(decompressValue(compressValue(""))).toBe("");
  expect(() => decompressValue("not bytea")).toThrow(/hex/);
});

test("round trip through a real bytea column, bound as a parameter", async () => {
  const compressed = compressValue(large);
  await client.query("INSERT INTO docs VALUES (1, $1)", [compressed]);
  const { rows } = await client.query<{ body: Buffer; text: string }>("SELECT body, body::text AS text FROM docs WHERE id = 1");
  expect(rows[0]!.text).toBe(compressed); // PostgreSQL's own bytea output is the same text
  expect(decompressValue(rows[0]!.body)).toBe(large);
  const sql = await client.query<{ ok: boolean }>("SELECT length(body) < 2000 AS ok FROM docs WHERE id = 1");
  expect(sql.rows[0]!.ok).toBe(true);
});

test("round trip through COPY text (with COPY's backslash escaping)", async () => {
  const compressed = compressValue("short value, copied");
  const stream = client.query(copyFrom("COPY docs (id, body) FROM STDIN"));
  await new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve).on("error", reject);
    stream.end(`2\t${compressed.replace(/\\/g, "\\\\")}\n`);
  });
  const { rows } = await client.query<{ body: Buffer }>("SELECT body FROM docs WHERE id = 2");
  expect(decompressValue(rows[0]!.body)).toBe("short value, copied");
});
