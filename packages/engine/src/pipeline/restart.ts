// Starting the change stream, and starting it over: after a crash the old
// walsender may hold the slot for a moment, and a relation that gains a
// column binary transfer cannot carry (schema-evolution.ts) restarts the
// stream in text from its last acknowledgment.
import { onSide } from "../failure";
import { ReplicationConnection, ReplicationError } from "../source/replication-connection";
import type { Lsn } from "../types";
import type { PipelineContext } from "./context";
import { TextTransferNeeded } from "./schema-evolution";
import { qosSettings } from "./qos";
import { makeBatcher } from "./stages";

export function openStream(ctx: PipelineContext): Promise<ReplicationConnection> {
  return ReplicationConnection.connect({ ...ctx.spec().source.connection, application_name: ctx.slotName });
}

// After a crash the old walsender may hold the slot for a moment: wait for it.
// `delivered` sees each message before the batcher does.
export async function streamFrom(ctx: PipelineContext, startLsn: Lsn, delivered: () => void): Promise<void> {
  const { stages } = ctx;
  for (let attempt = 1; ; attempt++) {
    try {
      const options = {
        slot: ctx.slotName,
        publication: ctx.publicationName,
        startLsn,
        messages: true,
        binary: stages.binary,
        coalesceMs: qosSettings(ctx.spec().config.qosTier).coalesceMs,
        ackIntervalMs: qosSettings(ctx.spec().config.qosTier).ackIntervalMs,
        // Caught up, a keepalive's position is confirmed (a fast shutdown of the source waits for it).
        caughtUp: () => stages.batcher?.caughtUp === true,
      };
      await onSide("source", stages.stream!.start(options, (message) => {
        delivered();
        return stages.batcher!.onMessage(message);
      }));
      return;
    } catch (e) {
      if (e instanceof TextTransferNeeded && !ctx.signal().aborted) {
        startLsn = await restartInText(ctx, startLsn);
        continue;
      }
      const busy = e instanceof ReplicationError && e.sqlState === "55006";
      if (!busy || attempt >= 150 || ctx.signal().aborted) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

// Drops what binary transfer gathered but did not commit; the stream
// resends it, in text, from the last acknowledged position.
async function restartInText(ctx: PipelineContext, startLsn: Lsn): Promise<Lsn> {
  const { stages } = ctx;
  stages.binary = false;
  stages.batcher!.discard();
  await stages.batcher!.drain();
  await stages.applier!.rollback();
  ctx.figures.forgetUnapplied();
  stages.batcher = makeBatcher(ctx);
  const acknowledged = stages.stream!.lastAcknowledged;
  // A fresh walsender session: the stream's options are fixed at START_REPLICATION.
  await stages.stream!.close();
  stages.stream = await onSide("source", openStream(ctx));
  return acknowledged > startLsn ? acknowledged : startLsn;
}
