// The initial sync: every replicated table copied from the source to the
// target under the logical slot's exported snapshot, so that the change
// stream starts exactly where the copy ends. Workers share the snapshot;
// large tables are split into page ranges so they share the work too.
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import { connect } from "../connect";
import { onSide, tagSide } from "../failure";
import type { RowTransformer } from "../transform/plan";
import { qualified, type PublishedTable } from "./publication";
import { LineArena, WireRow } from "./wire-row";

/** Per-table progress of the copy, counted as rows and bytes pass. */
export interface TableCopyProgress {
  table: string;
  rowsCopied: number;
  rowsEstimated: number;
  bytesCopied: number;
  bytesEstimated: number;
  completed: boolean;
}

export interface SnapshotCopyOptions {
  source: pg.ClientConfig;
  target: pg.ClientConfig;
  targetSchema: string;
  snapshotName: string;
  tables: PublishedTable[];
  parallelism: number;
  /** Per-table row transforms (absent: rows pass through untouched). */
  transformRow?: (table: string) => RowTransformer | undefined;
  /** Pages per range when a table is split (default 16384 = 128 MB). */
  rangePages?: number;
  /** Called after every chunk, for progress reporting. */
  onProgress?: (progress: TableCopyProgress[]) => void;
  /** Called as a table's copy begins (its first range taken by a worker) and as its last range is copied. */
  onTable?: (phase: "started" | "completed", progress: TableCopyProgress) => void;
  signal?: AbortSignal;
}

interface WorkItem {
  table: PublishedTable;
  /** [first page, end page) of a range; end undefined for "to the end". */
  pages?: [number, number | undefined];
}

/** Copies every table; resolves with the final progress, rejects on the first failure. */
export async function copySnapshot(options: SnapshotCopyOptions): Promise<TableCopyProgress[]> {
  const rangePages = options.rangePages ?? 16384;
  const progress = new Map<string, TableCopyProgress & { pendingItems: number; started: boolean }>();
  const queue: WorkItem[] = [];
  for (const t of [...options.tables].sort((a, b) => b.table.pages - a.table.pages)) {
    const ranges = Math.max(1, Math.ceil(t.table.pages / rangePages));
    for (let i = 0; i < ranges; i++) {
      queue.push({ table: t, pages: ranges === 1 ? undefined : [i * rangePages, i === ranges - 1 ? undefined : (i + 1) * rangePages] });
    }
    progress.set(t.table.table, {
      table: t.table.table,
      rowsCopied: 0,
      rowsEstimated: t.table.estimatedRows,
      bytesCopied: 0,
      bytesEstimated: t.table.sizeBytes,
      completed: false,
      pendingItems: ranges,
      started: false,
    });
  }
  const report = () => options.onProgress?.([...progress.values()].map(publicProgress));
  const workers = Array.from({ length: Math.max(1, Math.min(options.parallelism, queue.length)) }, async () => {
    const [source, target] = await Promise.all([onSide("source", connect(options.source)), onSide("target", connect(options.target))]);
    try {
      await onSide("source", async () => {
        await source.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        await source.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(options.snapshotName)}`);
      });
      for (let item = queue.shift(); item; item = queue.shift()) {
        options.signal?.throwIfAborted();
        const p = progress.get(item.table.table.table)!;
        if (!p.started) {
          p.started = true;
          options.onTable?.("started", publicProgress(p));
        }
        await copyItem(source, target, options, item, (rows, bytes) => {
          p.rowsCopied += rows;
          p.bytesCopied += bytes;
          report();
        });
        if (--p.pendingItems === 0) p.completed = true;
        report();
        if (p.completed) options.onTable?.("completed", publicProgress(p));
      }
      await onSide("source", source.query("COMMIT"));
    } finally {
      await Promise.all([source.end().catch(() => undefined), target.end().catch(() => undefined)]);
    }
  });
  const results = await Promise.allSettled(workers);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return [...progress.values()].map(publicProgress);
}

function publicProgress({ pendingItems: _, started: __, ...p }: TableCopyProgress & { pendingItems: number; started: boolean }): TableCopyProgress {
  return { ...p };
}

async function copyItem(
  source: pg.Client,
  target: pg.Client,
  options: SnapshotCopyOptions,
  item: WorkItem,
  count: (rows: number, bytes: number) => void,
): Promise<void> {
  const t = item.table.table;
  const columns = t.columns.map((c) => pg.escapeIdentifier(c.name)).join(", ");
  const conditions: string[] = [];
  // The row filter as PostgreSQL itself stored it for the publication.
  if (item.table.where) conditions.push(`(${item.table.where})`);
  if (item.pages) {
    conditions.push(`ctid >= '(${item.pages[0]},0)'::tid`);
    if (item.pages[1] !== undefined) conditions.push(`ctid < '(${item.pages[1]},0)'::tid`);
  }
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : "";
  const out = source.query(copyTo(`COPY (SELECT ${columns} FROM ${qualified(t)}${where}) TO STDOUT`));
  const into = target.query(
    copyFrom(`COPY ${qualified({ schema: options.targetSchema, table: t.table })} (${columns}) FROM STDIN`),
  );
  // The pipeline rejects with the first error: say which database it came from.
  out.on("error", (e) => tagSide("source", e));
  into.on("error", (e) => tagSide("target", e));
  const transform = options.transformRow?.(t.table);
  await pipeline(out, transform ? new RowTransform(transform, t.columns.length, count) : new RowCounter(count), into, {
    signal: options.signal,
  });
}

// Counts rows (newlines; escaped ones are written as "\n") and bytes.
class RowCounter extends Transform {
  constructor(private readonly count: (rows: number, bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    let rows = 0;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
    this.count(rows, chunk.length);
    done(null, chunk);
  }
}

// Transforms whole lines as COPY text (only the transformed columns are
// decoded) and passes on the bytes the transform wrote.
class RowTransform extends Transform {
  // The start of a line the last chunk ended inside.
  private rest: Buffer | undefined;
  private readonly arena = new LineArena();
  constructor(
    private readonly transform: RowTransformer,
    private readonly columns: number,
    private readonly count: (rows: number, bytes: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _: BufferEncoding, done: TransformCallback): void {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let start = 0;
    let rows = 0;
    // The lines written land one after another in the arena's slab: passed on as one piece per slab.
    let piece: { slab: Buffer; start: number; end: number } | undefined;
    try {
      for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
        const row = this.transform.transformLine(new WireRow(data, start, newline + 1, this.columns, 0, false), this.arena);
        if (piece?.slab === row.slab && piece.end === row.start) piece.end = row.end;
        else {
          if (piece) this.push(piece.slab.subarray(piece.start, piece.end));
          piece = { slab: row.slab, start: row.start, end: row.end };
        }
        start = newline + 1;
        rows++;
      }
    } catch (error) {
      done(error as Error);
      return;
    }
    if (piece) this.push(piece.slab.subarray(piece.start, piece.end));
    this.rest = start < data.length ? data.subarray(start) : undefined;
    this.count(rows, chunk.length);
    done();
  }
  override _flush(done: TransformCallback): void {
    done(this.rest ? new Error("COPY stream ended inside a row") : null);
  }
}

const NEWLINE = 0x0a;
