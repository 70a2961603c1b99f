// Batches for the codec's tests.
import { UNCHANGED_TOAST, type Relation } from "../types";
import type { ChangeBatch } from "./batch";

export const users: Relation = {
  oid: 16384,
  schema: "public",
  table: "users",
  columns: [
    { name: "id", typeOid: 20, typeName: "bigint", isKey: true, notNull: true },
    { name: "name", typeOid: 1043, typeName: "character varying(255)", isKey: false, notNull: false },
    { name: "bio", typeOid: 25, typeName: "text", isKey: false, notNull: false },
    { name: "tags", typeOid: 1009, typeName: "text[]", isKey: false, notNull: false },
  ],
  replicaIdentity: "d",
};

export const events: Relation = {
  oid: 4294967295, // the largest OID
  schema: "Schéma \"quoted\"",
  table: "événements 📅",
  columns: [
    { name: "at", typeOid: 1184, typeName: "timestamp with time zone", isKey: true, notNull: true },
    { name: "payload", typeOid: 3802, typeName: "jsonb", isKey: true, notNull: false },
  ],
  replicaIdentity: "f",
};

/** A table without columns: PostgreSQL allows them. */
export const empty: Relation = { oid: 16390, schema: "public", table: "empty", columns: [], replicaIdentity: "n" };

export const indexed: Relation = {
  oid: 16400,
  schema: "",
  table: "",
  columns: [{ name: "", typeOid: 0, typeName: "", isKey: true, notNull: false }],
  replicaIdentity: "i",
};

/** Every item kind, NULLs, unchanged TOAST, empty strings, unicode, big LSNs. */
export function everyKind(sequence = 7n): ChangeBatch {
  return {
    sequence,
    items: [
      { kind: "change", change: { kind: "insert", relation: users, newRow: ["1", "Ada", null, "{a,b}"] } },
      { kind: "change", change: { kind: "insert", relation: users, newRow: ["2", "", "", null] } },
      {
        kind: "change",
        change: { kind: "insert", relation: users, newRow: ["3", "日本語 ✓ émoji 🚀 \u0000 \t\n\\", "x".repeat(5000), "{}"] },
      },
      {
        kind: "change",
        change: { kind: "update", relation: users, newRow: ["1", "Ada L.", UNCHANGED_TOAST, UNCHANGED_TOAST] },
      },
      {
        kind: "change",
        change: { kind: "update", relation: users, oldRow: ["1", null, null, null], newRow: ["10", "Ada", null, ""] },
      },
      { kind: "commit", transaction: { xid: 4294967295, commitLsn: 0n, endLsn: 1n, commitTime: new Date(0) } },
      { kind: "change", change: { kind: "delete", relation: users, oldRow: ["2", null, null, null] } },
      {
        kind: "change",
        change: { kind: "update", relation: events, oldRow: ["2024-01-01 00:00:00+00", '{"k": "v"}'], newRow: ["2024-01-01 00:00:00+00", null] },
      },
      { kind: "change", change: { kind: "delete", relation: events, oldRow: [null, UNCHANGED_TOAST] } },
      { kind: "change", change: { kind: "insert", relation: empty, newRow: [] } },
      { kind: "change", change: { kind: "insert", relation: indexed, newRow: [""] } },
      { kind: "change", change: { kind: "truncate", relations: [], cascade: false, restartIdentity: false } },
      { kind: "change", change: { kind: "truncate", relations: [users, events, empty], cascade: true, restartIdentity: true } },
      {
        kind: "commit",
        transaction: {
          xid: 1,
          commitLsn: (1n << 63n) - 1n,
          endLsn: 1n << 63n,
          commitTime: new Date("2025-06-30T12:34:56.789Z"),
        },
      },
      {
        kind: "commit",
        transaction: { xid: 0, commitLsn: (1n << 64n) - 2n, endLsn: (1n << 64n) - 1n, commitTime: new Date(-86_400_000) },
      },
    ],
  };
}

/** Many similar rows: compresses well. */
export function repetitive(sequence = 1n, rows = 500): ChangeBatch {
  const batch: ChangeBatch = { sequence, items: [] };
  for (let i = 0; i < rows; i++) {
    batch.items.push({
      kind: "change",
      change: { kind: "insert", relation: users, newRow: [String(i), `user number ${i}`, "the same biography, again and again", "{x,y,z}"] },
    });
  }
  batch.items.push({ kind: "commit", transaction: { xid: 77, commitLsn: 1000n, endLsn: 1100n, commitTime: new Date(1_700_000_000_000) } });
  return batch;
}
