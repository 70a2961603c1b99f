// --only=codecs: what each compression level's codec costs on a change
// batch, beside brotli at quality 1 (Medium until zstd replaced it). No
// cluster: batches of the benchmark's rows (kit.ts's rowsSelect, built here
// in JavaScript) are serialized as the pipeline seals them (encodeBatch),
// once as the §2.1.1 config ships them (email, phone and ssn hashed to 64
// hex digits) and once plain. Figures are CPU milliseconds of this process
// per call (compress, decompress), the median of several rounds, on the
// calling thread: the codec's own work, without a trip to libuv's pool.
import { createHash, createHmac } from "node:crypto";
import { Decoder as ZstdDecoder, Encoder as ZstdEncoder } from "@toondepauw/node-zstd";
import { compressSync as lz4Compress, uncompressSync as lz4Uncompress } from "lz4-napi";
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from "node:zlib";
import { encodeBatch, type ChangeBatch } from "../../packages/engine/src/codec/batch";
import { COMPRESSION } from "../../packages/engine/src/codec/compressors";
import type { Relation } from "../../packages/engine/src/types";
import { COLUMNS } from "./kit";
import { round } from "./util";

const ROWS = 5_000; // a batch of the §2.1.1 CDC (Premium's batchRows)
const ROUNDS = 15;

const relation: Relation = {
  oid: 16384,
  schema: "public",
  table: "users",
  columns: COLUMNS.map((name, i) => ({ name, typeOid: i === 0 ? 20 : 25, typeName: i === 0 ? "bigint" : "text", isKey: i === 0, notNull: true })),
  replicaIdentity: "d",
};

const md5 = (s: string) => createHash("md5").update(s).digest("hex");
const hashed = (v: string) => createHmac("sha256", "bench-key").update(v, "utf8").digest("hex");

function batch(hash: boolean): Uint8Array {
  const items: ChangeBatch["items"] = [];
  const t0 = Date.parse("2026-12-03T12:00:00Z");
  for (let g = 1_000_000; g < 1_000_000 + ROWS; g++) {
    const email = `user${g}@example.com`;
    const phone = `+1-555-${String(g % 10_000_000).padStart(7, "0")}`;
    const ssn = String((g * 7919) % 1_000_000_000).padStart(9, "0");
    const row = [
      String(g),
      `user ${g}`,
      hash ? hashed(email) : email,
      hash ? hashed(phone) : phone,
      hash ? hashed(ssn) : ssn,
      ["us", "eu", "ap"][g % 3]!,
      (Math.round((g % 100_000) * 137) / 100).toFixed(2),
      `${md5(String(g))} ${md5(String(g + 1))} lorem ipsum dolor sit amet`,
      new Date(t0 + g).toISOString().replace("T", " ").replace("Z", "+00"),
    ];
    items.push({ kind: "change", change: { kind: "insert", relation, newRow: row } });
  }
  items.push({ kind: "commit", transaction: { xid: 1, commitLsn: 1n, endLsn: 2n, commitTime: new Date(t0) } });
  return encodeBatch({ sequence: 1n, items });
}

/** CPU ms of this process per call of `f`, the median of ROUNDS rounds of a few calls each. */
function cpuMs(f: () => unknown): number {
  f();
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < 4; i++) f();
    const u = process.cpuUsage(t0);
    rounds.push((u.user + u.system) / 1000 / 4);
  }
  return rounds.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
}

interface Codec {
  name: string;
  compress: (raw: Buffer) => Buffer;
  decompress: (compressed: Buffer) => Buffer;
}

// A codec by the name the engine gives it ("lz4", "zstd 1", "brotli q4"), called synchronously: each level's
// codec as the engine runs it on the calling thread, without a trip to libuv's pool.
function byName(name: string, label = name): Codec {
  const brotli = /^brotli q(\d+)$/.exec(name);
  if (brotli) {
    const quality = Number(brotli[1]);
    return {
      name: label,
      compress: (raw) => brotliCompressSync(raw, { params: { [zlib.BROTLI_PARAM_QUALITY]: quality, [zlib.BROTLI_PARAM_SIZE_HINT]: raw.length } }),
      decompress: (c) => brotliDecompressSync(c),
    };
  }
  const zstd = /^zstd (-?\d+)$/.exec(name);
  if (zstd) {
    const encoder = new ZstdEncoder(Number(zstd[1]));
    const decoder = new ZstdDecoder();
    return { name: label, compress: (raw) => encoder.encodeSync(raw), decompress: (c) => decoder.decodeSync(c) };
  }
  if (name === "lz4") return { name: label, compress: (raw) => lz4Compress(raw), decompress: (c) => lz4Uncompress(c) };
  throw new Error(`codecs: no synchronous form of ${name}`);
}

const BROTLI_Q1 = byName("brotli q1", "baseline: brotli q1");
const engineCodecs = () => (["low", "medium", "high"] as const).map((level) => byName(COMPRESSION[level].name, `${level}: ${COMPRESSION[level].name}`));

export async function codecsCase(log: (line: string) => void): Promise<Record<string, number | null>> {
  const r: Record<string, number | null> = {};
  const table: string[][] = [];
  for (const [label, raw] of [
    ["hashed", Buffer.from(batch(true))],
    ["plain", Buffer.from(batch(false))],
  ] as const) {
    log(`codecs: a ${ROWS.toLocaleString("en-US")}-row batch, ${label}: ${raw.length.toLocaleString("en-US")} bytes serialized`);
    r[`codecs_${label}_raw_bytes`] = raw.length;
    const base = { compress: 0, decompress: 0 };
    for (const codec of [BROTLI_Q1, ...engineCodecs()]) {
      const out = codec.compress(raw);
      if (!Buffer.from(codec.decompress(out)).equals(raw)) throw new Error(`${codec.name} does not round-trip`);
      const ratio = raw.length / out.length;
      const compress = cpuMs(() => codec.compress(raw));
      const decompress = cpuMs(() => codec.decompress(out));
      if (codec === BROTLI_Q1) Object.assign(base, { compress, decompress });
      const key = `codecs_${label}_${codec.name.split(":")[0]!.replace(/\W+/g, "_")}`;
      r[`${key}_ratio`] = round(ratio, 2);
      r[`${key}_compress_ms`] = round(compress, 2);
      r[`${key}_decompress_ms`] = round(decompress, 2);
      table.push([
        label,
        codec.name,
        ratio.toFixed(2),
        compress.toFixed(2),
        decompress.toFixed(2),
        codec === BROTLI_Q1 ? "" : `${(compress / base.compress).toFixed(2)}× / ${(decompress / base.decompress).toFixed(2)}×`,
      ]);
    }
  }
  const head = ["batch", "codec", "ratio", "compress ms", "decompress ms", "CPU vs brotli q1"];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(["", line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...table.map(line), ""].join("\n"));
  return r;
}
