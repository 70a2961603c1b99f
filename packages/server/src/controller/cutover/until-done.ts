// After a cutover's switch nothing may undo it (the tenant's clients write on
// the new primary): what remains — the replication ended, its slot and
// publication dropped; a source's tables dropped — is retried until done,
// never failed. Shared by failover (UpdateRouting) and, once it points here,
// migration (Cutover).
import { setTimeout as sleep } from "node:timers/promises";
import { LeaseLost } from "../../orchestrator/job-kind";
import type { CutoverContext } from "./state";

/** Tries `f` again (every second, then up to every 10 s) until it succeeds or the step is aborted; each failure logged. */
export async function untilDone<T>(ctx: CutoverContext, log: ((message: string) => void) | undefined, what: string, f: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      ctx.signal.throwIfAborted();
      // Another server holds the job now: it goes on from what was saved.
      if (e instanceof LeaseLost) throw e;
      log?.(`job ${ctx.jobId}: could not ${what} (attempt ${attempt + 1}), trying again: ${(e as Error).message}`);
      await sleep(Math.min(10_000, 1_000 * 2 ** attempt), undefined, { signal: ctx.signal });
    }
  }
}
