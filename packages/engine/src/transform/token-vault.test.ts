import { create } from "@bufbuild/protobuf";
import { AnonymizePIITransform_AnonymizationMethod, TransformSchema } from "@heliosdb/replication-proto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startCluster, type Cluster } from "../testing/clusters";
import type { Relation } from "../types";
import { MasterKeyProvider } from "./keys";
import { planRowTransforms } from "./plan";
import { openValue, PermissionDeniedError, PgTokenVault, sealValue } from "./token-vault";

let cluster: Cluster;
let pool: pg.Pool;
const keys = new MasterKeyProvider(Buffer.alloc(32, 3));
const admin = { permissions: ["replication:read", "pii:detokenize"] };
const reader = { permissions: ["replication:read"] };

beforeAll(async () => {
  cluster = await startCluster();
  pool = new pg.Pool({ connectionString: cluster.url() });
  // Sessions the server ends at teardown emit 'error' on the pool.
  pool.on("error", () => undefined);
}, 60_000);
afterAll(async () => {
  await pool?.end();
  await cluster?.stop();
});

const customers: Relation = {
  oid: 16400,
  schema: "public",
  table: "customers",
  replicaIdentity: "d",
  columns: [
    { name: "id", typeOid: 23, typeName: "integer", isKey: true, notNull: true },
    { name: "card", typeOid: 1043, typeName: "character varying(19)", isKey: false, notNull: false },
  ],
};

describe("PgTokenVault", () => {
  test("tokenize → vault → detokenize round trip; refused without the permission", async () => {
    const vault = new PgTokenVault(pool, keys);
    const transform = create(TransformSchema, {
      transformType: { case: "anonymizePii", value: { columns: ["card"], method: AnonymizePIITransform_AnonymizationMethod.TOKENIZE } },
    });
    const plan = await planRowTransforms("tenant-a", [transform], [customers], { keys, vault });
    const table = plan.forRelation(customers);
    expect(table.targetColumns[1]).toMatchObject({ name: "card", typeName: "text", typeOid: 25 });
    const rows = [["1", "4111-1111-1111-1111"], ["2", "5500-0000-0000-0004"], ["3", "4111-1111-1111-1111"], ["4", null]];
    const out = rows.map((row) => table.transform(row));
    expect(out[0]![1]).toMatch(/^tok_[a-z2-7]{32}$/);
    expect(out[2]![1]).toBe(out[0]![1]); // deterministic
    expect(out[3]![1]).toBeNull();
    await plan.flush();

    expect(await vault.detokenize("tenant-a", out[0]![1] as string, admin)).toBe("4111-1111-1111-1111");
    expect(await vault.detokenize("tenant-a", out[1]![1] as string, admin)).toBe("5500-0000-0000-0004");
    await expect(vault.detokenize("tenant-a", out[0]![1] as string, reader)).rejects.toThrow(PermissionDeniedError);
    await expect(vault.detokenize("tenant-a", out[0]![1] as string, reader)).rejects.toThrow(/"pii:detokenize"/);
    // Another tenant's token space is separate.
    expect(await vault.detokenize("tenant-b", out[0]![1] as string, admin)).toBeNull();
    expect(await vault.detokenize("tenant-a", "tok_unknown", admin)).toBeNull();
  });

  test("the table holds ciphertext, not plaintext, with a fresh nonce per value", async () => {
    const vault = new PgTokenVault(cluster.url(), keys);
    const value = "alice@example.com";
    await vault.store("tenant-c", new Map([["tok_a", value], ["tok_b", value]]));
    const { rows } = await pool.query<{ token: string; value_ciphertext: Buffer }>(
      "SELECT token, value_ciphertext FROM heliosdb_vault.tokens WHERE tenant_id = 'tenant-c' ORDER BY token",
    );
    expect(rows).toHaveLength(2);
    const [a, b] = rows.map((r) => r.value_ciphertext) as [Buffer, Buffer];
    expect(a.includes(Buffer.from(value))).toBe(false);
    expect(a.includes(Buffer.from("alice"))).toBe(false);
    expect(a).toHaveLength(12 + Buffer.byteLength(value) + 16); // nonce ‖ ciphertext ‖ tag
    expect(a.subarray(0, 12)).not.toEqual(b.subarray(0, 12));
    expect(await vault.detokenize("tenant-c", "tok_b", admin)).toBe(value);
    await vault.close();
  });

  test("stores are idempotent and keep the first ciphertext", async () => {
    const vault = new PgTokenVault(pool, keys);
    await vault.store("tenant-d", new Map([["tok_x", "x"]]));
    const before = await pool.query("SELECT value_ciphertext FROM heliosdb_vault.tokens WHERE tenant_id = 'tenant-d'");
    await vault.store("tenant-d", new Map([["tok_x", "x"], ["tok_y", "y"]]));
    const after = await pool.query("SELECT token, value_ciphertext FROM heliosdb_vault.tokens WHERE tenant_id = 'tenant-d' ORDER BY token");
    expect(after.rows.map((r) => r.token)).toEqual(["tok_x", "tok_y"]);
    expect(after.rows[0].value_ciphertext).toEqual(before.rows[0].value_ciphertext);
    await vault.store("tenant-d", new Map()); // no-op
  });

  test("concurrent vaults create the table once without failing", async () => {
    await cluster.createDatabase("fresh");
    const url = cluster.url("fresh");
    const vaults = Array.from({ length: 4 }, () => new PgTokenVault(url, keys));
    await Promise.all(vaults.map((v, i) => v.store("t", new Map([[`tok_${i}`, `v${i}`]]))));
    expect(await vaults[0]!.detokenize("t", "tok_3", admin)).toBe("v3");
    await Promise.all(vaults.map((v) => v.close()));
  });
});

test("a sealed value moved to another token or tenant does not open", async () => {
  const key = await keys.key("tenant-a", "vault");
  const sealed = sealValue(key, "tenant-a", "tok_1", "secret");
  expect(openValue(key, "tenant-a", "tok_1", sealed)).toBe("secret");
  expect(() => openValue(key, "tenant-a", "tok_2", sealed)).toThrow();
  expect(() => openValue(key, "tenant-b", "tok_1", sealed)).toThrow();
  const otherKey = await keys.key("tenant-b", "vault");
  expect(() => openValue(otherKey, "tenant-a", "tok_1", sealed)).toThrow();
});
