// The Synchronous tier: the source's commits wait until this replication's
// applier has committed them on the target. PostgreSQL does the waiting when
// the walsender's application_name is in synchronous_standby_names, and the
// walsender reports as flushed only what the target committed.
//
// synchronous_standby_names is cluster-wide: while set, commits of every
// database on the source wait for this replication. So the engine sets it
// only when it is empty, and clears it when the replication pauses or stops.
import pg from "pg";
import { connect } from "../connect";
import { onSide } from "../failure";

export class SynchronousSetupError extends Error {
  override readonly name = "SynchronousSetupError";
}

/** Whether the source's commits wait for one replication; it sets or clears the setting only when that changes. */
export class SynchronousTier {
  private synchronous = false;

  constructor(
    private readonly source: () => pg.ClientConfig,
    private readonly applicationName: string,
  ) {}

  async follow(wanted: boolean): Promise<void> {
    if (wanted === this.synchronous) return;
    const source = await onSide("source", connect(this.source()));
    try {
      if (wanted) await enableSynchronous(source, this.applicationName);
      else await disableSynchronous(source, this.applicationName);
      this.synchronous = wanted;
    } finally {
      await source.end();
    }
  }
}

/** Names the replication's walsender as the source's synchronous standby. */
export async function enableSynchronous(source: pg.ClientBase, applicationName: string): Promise<void> {
  const wanted = pg.escapeIdentifier(applicationName);
  const current = await standbyNames(source);
  if (current === wanted) return;
  if (current !== "") {
    throw new SynchronousSetupError(
      `the source already has synchronous_standby_names = '${current}'; the Synchronous tier sets it only when it is empty`,
    );
  }
  await source.query(`ALTER SYSTEM SET synchronous_standby_names = ${pg.escapeLiteral(wanted)}`);
  await reload(source, wanted);
}

/** Clears the setting if it names this replication; commits no longer wait. */
export async function disableSynchronous(source: pg.ClientBase, applicationName: string): Promise<void> {
  if ((await standbyNames(source)) !== pg.escapeIdentifier(applicationName)) return;
  await source.query("ALTER SYSTEM RESET synchronous_standby_names");
  await reload(source, "");
}

async function standbyNames(source: pg.ClientBase): Promise<string> {
  const { rows } = await source.query<{ names: string }>("SELECT setting AS names FROM pg_settings WHERE name = 'synchronous_standby_names'");
  return rows[0]?.names ?? "";
}

// pg_reload_conf() only signals: wait until the setting is in force.
async function reload(source: pg.ClientBase, expected: string): Promise<void> {
  await source.query("SELECT pg_reload_conf()");
  for (let i = 0; i < 100; i++) {
    if ((await standbyNames(source)) === expected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new SynchronousSetupError("the source did not apply synchronous_standby_names after a configuration reload");
}
