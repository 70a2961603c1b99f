// Cutover (spec §2.4.1), on the same shared parts as a failover
// (controller/cutover/). Before the fence, while the tenant still writes on
// the source: the target checked writable, the source's column defaults set
// on it and its sequences created. Then, in the window in which writes wait:
// the tenant's tables fenced on the source (its writers fail with 25006 and
// follow routing); side by side, since each needs only the fence, its
// routing marked writes_blocked, the carrier drained to the fence's final LSN
// (every acknowledged write is then on the target) and every sequence's
// position carried over; then any column default the target could not take
// before (its ALTER waits for the carrier's locks, which the drain frees);
// the target's state held (an exported snapshot); the routing switched in
// one transaction that moves its version. Then, outside the
// downtime: the verification — counts and checksums of every table, the
// source at its fence against the target as the switch found it (the held
// snapshot), exact while the tenant already writes there — and the carrier
// stopped, its slot and publication dropped. The source stays fenced:
// lifting it would reopen it to clients that have not followed routing.
// With `cleanup_source` the tenant's tables are dropped from the source —
// only after the switch, and only when the verification passed.
//
// downtime_ms is measured from the fence's blockingSince (the first write
// that waited) to the switch's commit; the phase's duration_ms is the
// control plane's clock from the phase's start to its end.
//
// Not cancellable (once the fence may be up, the migration goes on or rolls
// back). Re-runnable: each part saves what it did (cutover/state.ts), so a
// server that resumes it goes on from there (a snapshot held by a server
// that died is gone: its verification is then said not to have been made).
// Rollback, before the switch: the source's fence lifted, its routing
// unblocked (BulkCopy's rollback then removes the carrier and its tables).
// After the switch nothing fails the phase — a verification that finds a
// difference is reported, loudly, and what remains is retried — since a
// rollback then would move the tenant's clients off writes they made.
import { dropTenantTables, formatLsn, holdSnapshot, type HeldSnapshot, type SequencePlan } from "@heliosdb/replication-engine";
import { LeaseLost, type JobStep } from "../../orchestrator/job-kind";
import { catchUp } from "../cutover/catch-up";
import { drainCarrier, stopCarrier } from "../cutover/drain";
import { announceNext, blockRouting, contended, fenceSource, liftFence } from "../cutover/fence";
import { defaultsAtFence, prepareTarget, sequencesAtFence } from "../cutover/prepare";
import { readyTarget, refenceTarget } from "../cutover/promote";
import { lendSessions } from "../cutover/sessions";
import { sideBySide } from "../cutover/side-by-side";
import { switchBack, switchRouting } from "../cutover/switch";
import { timed } from "../cutover/timed";
import { untilDone } from "../cutover/until-done";
import { verifyAtSwitch } from "../cutover/verify-at-switch";
import { type MigrationContext, type MigrationDeps, databaseOf, migrationOf, pause, save, stateOf } from "./deps";

export function cutover(deps: MigrationDeps): JobStep {
  return {
    name: "Cutover",
    rerunnable: true,
    cancellable: false,
    async run(ctx: MigrationContext) {
      const s = stateOf(ctx);
      const m = await migrationOf(deps, ctx.jobId);
      const row = await deps.replications.get(s.replicationId);
      if (!row) throw new Error(`the migration's replication ${s.replicationId} no longer exists`);
      const [plainSource, plainTarget] = await Promise.all([databaseOf(deps, m.source, "source"), databaseOf(deps, m.target, "target")]);
      // Sessions opened now, before the fence, for every part up to the switch: the window in which the tenant's writes
      // wait holds no connection set-up. (The held snapshot keeps the target's in a transaction until the verification
      // ends, which reads the target on a session of its own.)
      const lent = await lendSessions(plainSource, plainTarget);
      try {
        const { source, target } = lent;
        const tables = s.tables!;
        const lines: string[] = [];
        let downtimeMs = 0;

        // What each part took on this run (the downtime is measured apart, from the fence's first ask).
        const took: Record<string, number> = {};

        // 0. Before the fence, while the tenant still writes on the source (nothing here is the clients' yet):
        // the target checked to take writes, the source's column defaults set on it, and its sequences created
        // (positions follow in the window, after the fence). Only what must wait for the fence waits with the writes.
        // Whether defaults are left for the window: unknown (so looked for) when this attempt did not prepare.
        let defaultsLeft = true;
        let plan: SequencePlan | undefined;
        if (!stateOf(ctx).fence && !stateOf(ctx).fencing) {
          // The clients that follow routing may connect to the target from now on (routing's next_primary).
          await timed(took, "announce_ms", () => announceNext(ctx, deps.routing, m.source, m.target, "migration"));
          lines.push(...(await timed(took, "ready_ms", () => readyTarget(ctx, target, tables))));
          const prepared = await prepareTarget(source, target, tables, { checkWritable: false }, took);
          lines.push(...prepared.lines);
          defaultsLeft = prepared.defaultsLeft > 0;
          plan = prepared.sequences;
        }

        // 0b. Caught up while the tenant still writes: drained to a mark until a round is short, so the drain inside the
        // window is left only the writes of its last moments (the lag the catch-up phase allowed is drained here).
        if (!stateOf(ctx).fence && !stateOf(ctx).fencing) {
          await timed(took, "catch_up_ms", () => catchUp(deps.orchestrator(), row, source, { timeoutMs: deps.drainTimeoutMs ?? 60_000, signal: ctx.signal }));
        }

        // 1. Writes stop on the source.
        const fenced = await timed(took, "fence_ms", () => fenceSource(ctx, source, tables, deps.fenceLockTimeoutMs ?? 5_000));
        const finalLsn = BigInt(fenced.finalLsn);

        // 2. While the writes wait, what needs only the fence runs side by side, so the window is the longest of them and
        // not their sum: clients that follow routing hear that writes are blocked; every acknowledged write reaches the
        // target (the drain); every sequence takes its position as the fence left it (logical decoding carries none).
        const alreadySwitched = stateOf(ctx).routingSwitchedAt !== undefined;
        const [applied, positioned] = await sideBySide([
          timed(took, "drain_ms", () => drainCarrier(ctx, deps, row, finalLsn, deps.drainTimeoutMs ?? 60_000)),
          alreadySwitched ? undefined : sequencesAtFence(source, target, tables, plan, took),
          timed(took, "block_ms", () => blockRouting(ctx, deps.routing, m.source, "migration")).then(() => pause(deps, "fenced", ctx)),
        ]);
        await pause(deps, "drained", ctx);
        lines.push(`fenced ${fenced.tables.length} tables (${fenced.tables.join(", ")}) at LSN ${formatLsn(finalLsn)}${contended(fenced)}; the target applied through ${formatLsn(applied)}`);

        // 3. Any column default the target could not take before (its ALTER waits for the carrier's locks, which the
        // drain has freed); the target's state right before the switch held for the verification.
        let held: HeldSnapshot | undefined;
        const sequences = positioned?.details;
        try {
          if (!alreadySwitched) {
            lines.push(...positioned!.lines, ...(await defaultsAtFence(source, target, tables, { lockTimeoutMs: deps.fenceLockTimeoutMs ?? 5_000, defaults: defaultsLeft }, took)));
            held = await timed(took, "hold_ms", () => holdSnapshot(target));
          }

          // 4. The switch; the downtime ends here.
          const switched = await timed(took, "switch_ms", () => switchRouting(ctx, deps.routing, m.target, "migration"));
          if (!alreadySwitched && switched.downtimeMs !== undefined && !(await deps.migrations.record(ctx.jobId, ctx.lease, { downtimeMs: switched.downtimeMs }))) {
            throw new LeaseLost(ctx.jobId);
          }
          downtimeMs = switched.downtimeMs ?? 0;
          lines.push(
            `the routing of tenant ${s.tenantId} names ${m.target.region || m.target.connectionId} (${m.target.database})${switched.version !== undefined ? ` (version ${switched.version})` : ""}; ` +
              `downtime ${downtimeMs} ms, from the first blocked write to the switch`,
          );
          await pause(deps, "switched", ctx);
          // Recorded after the switch: a control-plane write less while writes wait.
          if (sequences) await ctx.report(sequences);

          // 5. The verification, outside the downtime: the source at its fence against the target as the switch found it.
          if (!stateOf(ctx).verification) {
            const verification = await timed(took, "verify_ms", () => verifyAtSwitch(ctx, source, plainTarget, { tables }, held));
            await save(ctx, { verification });
          }
        } finally {
          await held?.release();
        }
        const verification = stateOf(ctx).verification!;
        lines.push(verification.message);

        // 5. After the switch nothing may undo it (clients write on the target now): what follows is retried, never failed.
        await timed(took, "stop_ms", () => untilDone(ctx, deps.log, "stop the replication", () => stopCarrier(ctx, deps, row.id, true)));
        lines.push("the replication stopped, its slot and publication dropped");
        if (m.config.cleanupSource && !verification.ok) {
          lines.push("cleanup_source: the source's tables are kept (fenced), since the target was not verified equal to them");
        } else if (m.config.cleanupSource) {
          // Only now, with the routing on the target and the copy verified: the source's copy of the tenant dropped.
          if (!stateOf(ctx).sourceCleaned) {
            const dropped = await untilDone(ctx, deps.log, "drop the source's tables", () => dropTenantTables(source, tables, { lockTimeoutMs: deps.fenceLockTimeoutMs ?? 5_000 }));
            await save(ctx, { sourceCleaned: dropped });
          }
          const cleaned = stateOf(ctx).sourceCleaned!;
          lines.push(`cleanup_source: dropped ${cleaned.length} tables from the source${cleaned.length ? ` (${cleaned.join(", ")})` : ""}`);
        } else {
          lines.push("the source keeps the tenant's tables, fenced");
        }
        await ctx.report({
          message: lines.join("; "),
          final_lsn: formatLsn(finalLsn),
          blocking_since: fenced.blockingSince,
          downtime_ms: downtimeMs,
          verified: verification.ok,
          ...(verification.tables ? { verification: verification.tables } : {}),
          ...took,
        });
      } finally {
        await lent.end();
      }
    },

    async rollback(ctx: MigrationContext) {
      const s = stateOf(ctx);
      const m = await migrationOf(deps, ctx.jobId);
      await switchBack(ctx, deps.routing, m.source, m.target, "migration");
      await refenceTarget(ctx, () => databaseOf(deps, m.target, "target"), deps.fenceLockTimeoutMs ?? 5_000);
      await liftFence(ctx, deps.routing, m.source, "migration", async () => ({ db: await databaseOf(deps, m.source, "source"), tables: s.tables ?? [] }));
    },
  };
}
