import { describe, expect, test } from "vitest";
import { UNCHANGED_TOAST, type Relation } from "../types";
import { PgOutputDecoder, PgOutputError, dateToPgTimestamp, pgTimestampToDate, type PgOutputMessage } from "./pgoutput";
import { rowValues } from "./wire-row";

// Rows arrive as bytes (WireRow); compare their values.
function plain(m: PgOutputMessage): unknown {
  if (m.tag !== "change" || m.change.kind === "truncate") return m;
  const c = m.change;
  const rows = {
    ...("newRow" in c && c.newRow ? { newRow: rowValues(c.newRow) } : {}),
    ...("oldRow" in c && c.oldRow ? { oldRow: rowValues(c.oldRow) } : {}),
  };
  return { ...m, change: { ...c, ...rows } };
}

// Builds messages byte by byte, the way the server's logicalrep_write_* functions do.
class Builder {
  private parts: Buffer[] = [];
  char(c: string): this {
    this.parts.push(Buffer.from(c, "latin1"));
    return this;
  }
  u8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.parts.push(b);
    return this;
  }
  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  i64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    this.parts.push(b);
    return this;
  }
  raw(bytes: Buffer): this {
    this.parts.push(bytes);
    return this;
  }
  cstring(s: string): this {
    this.parts.push(Buffer.from(s, "utf8"), Buffer.from([0]));
    return this;
  }
  /** TupleData: null for 'n', UNCHANGED_TOAST for 'u', strings as 't'. */
  tuple(values: Array<string | null | typeof UNCHANGED_TOAST>): this {
    this.i16(values.length);
    for (const v of values) {
      if (v === null) this.char("n");
      else if (v === UNCHANGED_TOAST) this.char("u");
      else {
        const bytes = Buffer.from(v, "utf8");
        this.char("t").i32(bytes.length);
        this.parts.push(bytes);
      }
    }
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const msg = () => new Builder();

// 2024-01-02T03:04:05.678Z plus 999 microseconds: the sub-millisecond part must floor away.
const COMMIT_TIME = new Date("2024-01-02T03:04:05.678Z");
const COMMIT_MICROS = (BigInt(COMMIT_TIME.getTime()) - 946_684_800_000n) * 1000n + 999n;

function relationMessage(oid: number, schema: string, identity = "d"): Buffer {
  return msg()
    .char("R")
    .u32(oid)
    .cstring(schema)
    .cstring("items")
    .char(identity)
    .i16(3)
    .u8(1).cstring("id").u32(23).i32(-1)
    .u8(0).cstring("name").u32(25).i32(-1)
    .u8(0).cstring("données").u32(1043).i32(259)
    .build();
}

function decoderWithRelation(oid = 16384): { decoder: PgOutputDecoder; relation: Relation } {
  const decoder = new PgOutputDecoder();
  const m = decoder.decode(relationMessage(oid, "public"));
  if (m.tag !== "relation") throw new Error("expected a relation");
  return { decoder, relation: m.relation };
}

describe("PgOutputDecoder", () => {
  test("begin: final LSN, commit time (exact to the millisecond), unsigned xid", () => {
    const m = new PgOutputDecoder().decode(msg().char("B").u64(0x16_b374d848n).i64(COMMIT_MICROS).u32(0xfffffff0).build());
    expect(m).toEqual({ tag: "begin", finalLsn: 0x16_b374d848n, commitTime: COMMIT_TIME, xid: 0xfffffff0 });
  });

  test("commit: commit LSN, end LSN, commit time; LSNs above 2^63 stay unsigned", () => {
    const big = 0xffff_ffff_0000_0001n;
    const m = new PgOutputDecoder().decode(msg().char("C").u8(0).u64(big).u64(big + 48n).i64(COMMIT_MICROS).build());
    expect(m).toEqual({ tag: "commit", commitLsn: big, endLsn: big + 48n, commitTime: COMMIT_TIME });
  });

  test("timestamps convert both ways from the 2000-01-01 epoch, including before it", () => {
    expect(pgTimestampToDate(0n).toISOString()).toBe("2000-01-01T00:00:00.000Z");
    expect(pgTimestampToDate(-1n).toISOString()).toBe("1999-12-31T23:59:59.999Z");
    expect(dateToPgTimestamp(new Date("2000-01-01T00:00:01Z"))).toBe(1_000_000n);
  });

  test("relation: columns, key flags, replica identity; pg_catalog sent as the empty string", () => {
    const { relation } = decoderWithRelation();
    expect(relation).toEqual({
      oid: 16384,
      schema: "public",
      table: "items",
      replicaIdentity: "d",
      columns: [
        { name: "id", typeOid: 23, typeName: "", isKey: true, notNull: false },
        { name: "name", typeOid: 25, typeName: "", isKey: false, notNull: false },
        { name: "données", typeOid: 1043, typeName: "", isKey: false, notNull: false },
      ],
    });
    const m = new PgOutputDecoder().decode(relationMessage(1, "", "f"));
    expect(m.tag === "relation" && [m.relation.schema, m.relation.replicaIdentity]).toEqual(["pg_catalog", "f"]);
  });

  test("a later relation message for the same OID replaces the cached one", () => {
    const { decoder, relation } = decoderWithRelation();
    const renamed = msg().char("R").u32(16384).cstring("s2").cstring("t2").char("f").i16(1)
      .u8(1).cstring("only").u32(20).i32(-1).build();
    decoder.decode(renamed);
    const m = decoder.decode(msg().char("I").u32(16384).char("N").tuple(["7"]).build());
    expect(m.tag === "change" && m.change.kind === "insert" && m.change.relation.table).toBe("t2");
    expect(decoder.relation(16384)?.columns).toHaveLength(1);
    expect(relation.table).toBe("items"); // earlier changes keep the shape they were decoded with
  });

  test("insert: text, null, unchanged TOAST, multibyte UTF-8", () => {
    const { decoder, relation } = decoderWithRelation();
    const m = decoder.decode(msg().char("I").u32(16384).char("N").tuple(["1", null, "naïve ☃"]).build());
    expect(plain(m)).toEqual({ tag: "change", change: { kind: "insert", relation, newRow: ["1", null, "naïve ☃"] } });
    const u = decoder.decode(msg().char("I").u32(16384).char("N").tuple(["2", UNCHANGED_TOAST, ""]).build());
    expect(u.tag === "change" && u.change.kind === "insert" && rowValues(u.change.newRow)).toEqual(["2", UNCHANGED_TOAST, ""]);
  });

  test("update: without old tuple, with key ('K') and with full old row ('O')", () => {
    const { decoder, relation } = decoderWithRelation();
    const update = decoder.decode(msg().char("U").u32(16384).char("N").tuple(["1", "b", UNCHANGED_TOAST]).build());
    expect(plain(update)).toEqual({ tag: "change", change: { kind: "update", relation, newRow: ["1", "b", UNCHANGED_TOAST] } });
    expect(update.tag === "change" && "oldRow" in update.change).toBe(false);
    const keyed = decoder.decode(
      msg().char("U").u32(16384).char("K").tuple(["1", null, null]).char("N").tuple(["2", "b", "c"]).build(),
    );
    expect(plain(keyed)).toEqual({
      tag: "change",
      change: { kind: "update", relation, oldRow: ["1", null, null], newRow: ["2", "b", "c"] },
    });
    const full = decoder.decode(
      msg().char("U").u32(16384).char("O").tuple(["1", "a", "x"]).char("N").tuple(["1", "b", "x"]).build(),
    );
    expect(full.tag === "change" && full.change.kind === "update" && full.change.oldRow && rowValues(full.change.oldRow)).toEqual(["1", "a", "x"]);
  });

  test("delete: key ('K') and full old row ('O')", () => {
    const { decoder, relation } = decoderWithRelation();
    expect(plain(decoder.decode(msg().char("D").u32(16384).char("K").tuple(["5", null, null]).build()))).toEqual({
      tag: "change",
      change: { kind: "delete", relation, oldRow: ["5", null, null] },
    });
    const full = decoder.decode(msg().char("D").u32(16384).char("O").tuple(["5", "n", "d"]).build());
    expect(full.tag === "change" && full.change.kind === "delete" && rowValues(full.change.oldRow)).toEqual(["5", "n", "d"]);
  });

  test("truncate: relation list and cascade / restart identity flags", () => {
    const { decoder, relation } = decoderWithRelation(1);
    const other = decoder.decode(relationMessage(2, "other"));
    if (other.tag !== "relation") throw new Error("expected a relation");
    expect(decoder.decode(msg().char("T").i32(2).u8(3).u32(1).u32(2).build())).toEqual({
      tag: "change",
      change: { kind: "truncate", relations: [relation, other.relation], cascade: true, restartIdentity: true },
    });
    const plain = decoder.decode(msg().char("T").i32(1).u8(2).u32(2).build());
    expect(plain.tag === "change" && plain.change.kind === "truncate" && [plain.change.cascade, plain.change.restartIdentity])
      .toEqual([false, true]);
  });

  test("logical message: transactional flag, LSN, prefix, binary content", () => {
    const content = Buffer.from([0, 1, 2, 255]);
    const d = new PgOutputDecoder();
    expect(d.decode(msg().char("M").u8(1).u64(0x1_00000010n).cstring("heliosdb").i32(4).raw(content).build())).toEqual({
      tag: "message",
      transactional: true,
      lsn: 0x1_00000010n,
      prefix: "heliosdb",
      content,
    });
    const empty = d.decode(msg().char("M").u8(0).u64(7n).cstring("p").i32(0).build());
    expect(empty).toEqual({ tag: "message", transactional: false, lsn: 7n, prefix: "p", content: Buffer.alloc(0) });
  });

  test("origin and type messages are parsed past", () => {
    const d = new PgOutputDecoder();
    expect(d.decode(msg().char("O").u64(123n).cstring("upstream").build())).toEqual({ tag: "origin" });
    expect(d.decode(msg().char("Y").u32(70000).cstring("public").cstring("mood").build())).toEqual({ tag: "type" });
  });

  test("malformed input fails loudly", () => {
    const { decoder } = decoderWithRelation();
    // a row before its relation
    expect(() => decoder.decode(msg().char("I").u32(999).char("N").tuple(["1"]).build())).toThrow(/OID 999/);
    // tuple width differing from the relation
    expect(() => decoder.decode(msg().char("I").u32(16384).char("N").tuple(["1"]).build())).toThrow(PgOutputError);
    // truncated
    expect(() => decoder.decode(msg().char("B").u64(1n).build())).toThrow(/truncated/);
    // binary tuple values (protocol v2 binary mode) are not text
    const binary = msg().char("I").u32(16384).char("N").i16(3).char("b").i32(0).char("n").char("n").build();
    expect(() => decoder.decode(binary)).toThrow(/text format/);
    // streamed-transaction tags belong to protocol v2+
    expect(() => decoder.decode(msg().char("S").u32(1).u8(1).build())).toThrow(/unsupported pgoutput message tag "S"/);
    expect(() => new PgOutputDecoder().decode(Buffer.alloc(0))).toThrow(PgOutputError);
  });
});
