// Small helpers the engine benchmark's files use.

/** `x` to `digits` decimals; null for NaN or an infinity (JSON has neither). */
export const round = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The p-th percentile of `values` (nearest rank); NaN for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
