// A stop that ends within its deadline even when a database is gone: every
// step is bounded, a step that overruns is named and left behind, and the
// embedded clusters always get the last part of the deadline — they are what
// must not outlive the server.

export interface ShutdownStep {
  /** What the server waits for, as logged when it overruns: "closing the control-plane pool". */
  name: string;
  /** `ms`: the time this step has. */
  run(ms: number): Promise<unknown>;
}

export interface ShutdownPlan {
  /** Run one after another (listeners, pipelines, pools). */
  steps: ShutdownStep[];
  /** Run together at the end (the embedded clusters). */
  last: ShutdownStep[];
  deadlineMs: number;
  log(line: string): void;
}

/** True when every step finished in time and without error. */
export async function shutDown(plan: ShutdownPlan): Promise<boolean> {
  const end = Date.now() + plan.deadlineMs;
  // Kept for the last steps: a fast shutdown of PostgreSQL takes well under a second.
  const reserve = plan.last.length ? Math.min(5_000, plan.deadlineMs / 3) : 0;
  let clean = true;
  for (const step of plan.steps) clean = (await bounded(step, end - reserve - Date.now(), plan.log)) && clean;
  const last = await Promise.all(plan.last.map((step) => bounded(step, end - Date.now(), plan.log)));
  return clean && last.every(Boolean);
}

async function bounded(step: ShutdownStep, ms: number, log: (line: string) => void): Promise<boolean> {
  if (ms <= 0) {
    log(`shutdown: no time left for ${step.name}; skipped`);
    return false;
  }
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    step.run(ms).then(
      () => ({ done: true as const }),
      (error: unknown) => ({ done: true as const, error }),
    ),
    new Promise<{ done: false }>((resolve) => (timer = setTimeout(() => resolve({ done: false }), ms))),
  ]);
  clearTimeout(timer);
  if (!outcome.done) {
    log(`shutdown: still waiting for ${step.name} after ${(ms / 1000).toFixed(1)} s; going on without it`);
    return false;
  }
  if ("error" in outcome) {
    log(`shutdown: ${step.name} failed: ${(outcome.error as Error)?.message ?? String(outcome.error)}`);
    return false;
  }
  return true;
}
