// How far V8 lets the old generation grow between mark-compacts, in a
// process that streams changes.
//
// A change lives from its decoding until its batch has applied: a
// 10,000-row batch is gathered, sealed and opened while the one before it
// applies, so most rows survive a scavenge or two and reach the old
// generation, dead soon after. What stays alive is small (about 15 MB), and
// V8 sizes the next mark-compact's threshold from it, at 1.3–1.5× in
// practice: it ran a mark-compact every 70–100 ms. In the §2.1.1 CDC
// benchmark (a million rows with hashed columns, brotli and AES-GCM;
// bench/engine) the node spent 13.8–14.4 CPU-seconds (0.50–0.54× native); with
// the threshold at 4× what survived, V8's own largest factor, it ran 44–51
// mark-compacts instead of 141–203 and spent 9.6–9.9 (0.60×). 6× (500)
// bought little more (9.2). Memory pays: the heap may reach 4× its live size
// before it is collected (for the server with 100 replications, tens of MB).
//
// The factor is process-wide and read at each GC: set once, when the first
// pipeline is made.
import { setFlagsFromString } from "node:v8";

/** Heap growth allowed after a mark-compact, in percent of what survived it. */
export const HEAP_GROWING_PERCENT = 300;

let set = false;

export function streamingHeap(): void {
  if (set) return;
  set = true;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
