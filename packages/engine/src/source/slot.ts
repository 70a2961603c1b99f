// Dropping a replication's slot. The walsender of a stream that was just
// closed — by this process, or by another server that let the replication
// go — releases the slot only as it exits, a moment after the client side
// has closed; meanwhile PostgreSQL refuses the drop (55006, "is active").
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

const BUSY_ATTEMPTS = 50;
const BUSY_WAIT_MS = 200;

/** Drops the slot if it exists, waiting up to 10 s for a walsender that is letting it go. */
export async function dropSlot(client: pg.ClientBase, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [name]);
      return;
    } catch (e) {
      const busy = e instanceof pg.DatabaseError && e.code === "55006";
      if (!busy || attempt >= BUSY_ATTEMPTS) throw e;
      await sleep(BUSY_WAIT_MS);
    }
  }
}
