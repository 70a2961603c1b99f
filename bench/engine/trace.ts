// --trace-queries: the wall time of every statement any pg.Client runs (the
// engine's and the benchmark's), by kind, and of the engine's stages (a
// flush: seal, open, apply, which the stream waits for; within it the codec
// and the applier), printed after each engine run. For finding where the
// time goes; off by default.
import pg from "pg";
import { Applier } from "../../packages/engine/src/apply/applier";
import { BatchCodec } from "../../packages/engine/src/codec/codec";
import { Batcher } from "../../packages/engine/src/pipeline/batcher";

const traced = new Map<string, { calls: number; ms: number }>();
let tracing = false;

function count(label: string, t0: number): void {
  const entry = traced.get(label) ?? { calls: 0, ms: 0 };
  entry.calls++;
  entry.ms += performance.now() - t0;
  traced.set(label, entry);
}

function traceMethod(proto: object, name: string, label: string): void {
  const target = proto as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const original = target[name]!;
  target[name] = async function (this: unknown, ...a: unknown[]) {
    const t0 = performance.now();
    try {
      return await original.apply(this, a);
    } finally {
      count(label, t0);
    }
  };
}

/** Wraps pg.Client's query and the engine's stages; call once, before anything runs. */
export function startTracing(): void {
  if (tracing) return;
  tracing = true;
  const original = pg.Client.prototype.query as (...a: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown }).query = function (this: pg.Client, ...a: unknown[]) {
    const config = a[0] as string | { text?: string } | undefined;
    const text = typeof config === "string" ? config : config?.text;
    const result = original.apply(this, a);
    if (text && result instanceof Promise) {
      const kind = text.trim().replace(/\s+/g, " ").match(/^(\w+(?: (?:INTO|FROM|TABLE))?(?: [\w."]+)?)/)?.[1] ?? text.slice(0, 30);
      const t0 = performance.now();
      const done = () => count(kind, t0);
      result.then(done, done);
    }
    return result;
  };
  traceMethod(Batcher.prototype, "flushNow", "[engine] Batcher.flushNow: seal + open + apply, stream waits");
  traceMethod(BatchCodec.prototype, "seal", "[engine] BatchCodec.seal: protobuf + compression + AES-GCM");
  traceMethod(BatchCodec.prototype, "open", "[engine] BatchCodec.open: AES-GCM + decompression + protobuf");
  traceMethod(Applier.prototype, "apply", "[engine] Applier.apply: BEGIN, upserts, checkpoint, COMMIT");
}

/** Forgets what was traced so far (before the window a report covers). */
export function clearTrace(): void {
  traced.clear();
}

/** Logs the twelve kinds that took the most wall time since the last clear, then clears. */
export function traceReport(log: (line: string) => void, what: string, wallSeconds: number): void {
  if (!tracing) return;
  const top = [...traced].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
  log(`  queries during ${what} (wall ${wallSeconds.toFixed(2)} s):`);
  for (const [kind, { calls, ms }] of top) log(`    ${(ms / 1000).toFixed(2).padStart(7)} s  ${String(calls).padStart(8)} calls  ${kind}`);
  traced.clear();
}
