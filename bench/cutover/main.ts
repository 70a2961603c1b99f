// The cutover benchmark (issue 12): a tenant of about 1M rows under a steady
// 2,000 writes/s from clients that follow its routing (in a process of their
// own, clients.ts); N failovers back and
// forth between us-east-1 and us-west-2 (each through the reverse
// replication the previous one started), M live migrations back and forth,
// and, beside them on the same clusters under the same load, the textbook
// cutover an operator scripts with PostgreSQL's own logical replication
// (textbook.ts). Prints progress, a table, and as its last line one JSON
// object of results.
//
//   npm run bench:cutover                        1M rows, 2,000 writes/s, 20 failovers, 20 migrations, 5 textbook runs
//   npm run bench:cutover -- --quick             30k rows, 500 writes/s, 2 of each: checks it works
//   npm run bench:cutover -- --failovers=5 --migrations=0 --textbook=3 --rows=300000 --rate=1000
//
// Downtime, as a client sees it: the longest time in which no write of the
// load was acknowledged — in the cutover's window (from 1 s before the
// fence's first lock request to 1 s after the routing switch) for ours, and,
// beside it, over the whole failover or migration; from stopping the
// writers until they write on the new primary for the textbook's.
// The server's own figure (downtime_ms: from the fence to the routing
// switch) is reported beside it. Lost writes: acknowledged writes missing
// (or not as last acknowledged) on the final primary, counted over the whole
// run, plus those of each textbook run on its new primary.
import { performance } from "node:perf_hooks";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { EAST, startWorld, WEST, type World } from "../../packages/server/src/testing/world";
import { longestSilence, silenceIn } from "./load";
import { startRemoteLoad, type RemoteLoad } from "./remote-load";
import { textbookCutover, type TextbookRun } from "./textbook";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
const QUICK = args.has("quick");
const num = (key: string, full: number, quick: number) => Number(args.get(key) ?? (QUICK ? quick : full));
const ROWS = num("rows", 1_000_000, 30_000);
const RATE = num("rate", 2_000, 500);
const CONNECTIONS = num("connections", 8, 4);
const FAILOVERS = num("failovers", 20, 2);
const MIGRATIONS = num("migrations", 20, 2);
const TEXTBOOK = num("textbook", 5, 2);
const TARGETS = { cutoverP99Ms: 85, failoverP99Ms: 350, lostWrites: 0, vsTextbook: 10 };
/** Users; seedTenant adds two orders per user and 200 products. */
const USERS = Math.round(ROWS / 3);

const started = Date.now();
const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s] ${line}\n`);
const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Cutover {
  kind: "failover" | "migration";
  id: string;
  status: string;
  /** Client-observed: in the cutover's window (from 1 s before the fence's ask to 1 s after the switch), and over the whole operation. */
  clientMs: number;
  wholeMs: number;
  serverMs: number;
  totalMs: number;
  message: string;
}

// What an interrupted run must still end: the clients' process, the clusters and the server, and their folders.
let running: { world?: World; load?: RemoteLoad } = {};

async function main() {
  log(`seeding a tenant of ${(USERS * 3 + 200).toLocaleString("en-US")} rows; load ${RATE} writes/s over ${CONNECTIONS} connections`);
  const world = await startWorld({ users: USERS });
  running = { world };
  let load: RemoteLoad | undefined;
  try {
    await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)`, [
      JSON.stringify({ connectionId: EAST, database: "production_db", schema: "public", region: "us-east-1" }),
    ]);

    // The textbook procedure first, while the tenant is on east.
    const textbook: TextbookRun[] = [];
    for (let run = 1; run <= TEXTBOOK; run++) {
      const r = await textbookCutover({ run, east: world.east, west: world.west, rate: RATE, connections: CONNECTIONS, users: USERS, log });
      textbook.push(r);
      log(`textbook ${run}: downtime ${r.downtimeMs.toFixed(1)} ms (lag 0 after ${r.catchupMs.toFixed(1)} ms, sequences ${r.sequencesMs.toFixed(1)} ms), ${r.acknowledged} writes acknowledged, ${r.lostWrites} lost${r.errors.length ? `, errors: ${r.errors.slice(0, 3).join("; ")}` : ""}`);
    }

    // Ours: the tenant's clients, in a process of their own, follow routing (WatchTenantRouting through the SDK).
    load = await startRemoteLoad({
      rate: RATE,
      connections: CONNECTIONS,
      tag: "b-",
      users: USERS,
      baseUrl: world.app.urls.rest,
      token: world.token,
      tenantId: "tenant-123",
      servers: { [EAST]: world.east.url(""), [WEST]: world.west.url("") },
    });
    running.load = load;
    // The clients connect and warm up before anything is measured.
    await sleep(3_000);
    const cutovers: Cutover[] = [];

    if (FAILOVERS > 0) {
      let current = await world.createReplication("bench_west", ["users", "orders", "products"]);
      await expectOk(world.rest("POST", `/replications/${current}/start`, {}), 200);
      for (let i = 1; i <= FAILOVERS; i++) {
        const copyStarted = performance.now();
        await streaming(world, current);
        log(`failover ${i}: replication ${current} streams (${((performance.now() - copyStarted) / 1000).toFixed(1)} s after its start)`);
        await sleep(1_000);
        const t0 = performance.now();
        const accepted = await expectOk(world.rest("POST", `/replications/${current}/failover`, { reason: `bench ${i}`, update_routing: true, reverse_replication: i < FAILOVERS }), 202);
        const done = await ended(world, `/failovers/${accepted.failover_id}`);
        const t1 = performance.now();
        await sleep(500);
        const w = await windowOf(world, load, accepted.failover_id);
        const c: Cutover = { kind: "failover", id: accepted.failover_id, status: done.status, ...silences(load, w, t0, t1), serverMs: Number(done.downtime_ms ?? 0), totalMs: t1 - t0, message: done.message ?? "" };
        cutovers.push(c);
        log(`failover ${i}: ${c.status} in ${c.totalMs.toFixed(0)} ms; client-observed downtime ${c.clientMs.toFixed(1)} ms (${c.wholeMs.toFixed(1)} ms over the whole ${c.kind}), server downtime_ms ${c.serverMs}${c.message ? ` (${c.message})` : ""}; steps ${steps(done.steps)}; window ${await timeline(world, accepted.failover_id)}; ${silenceAt(load, w, t0, t1)}`);
        if (done.status !== "Completed") break;
        current = done.reverse_replication_id;
      }
    }

    if (MIGRATIONS > 0) {
      const probe = await world.rest("GET", "/migrations");
      if (probe.status !== 200) log(`migrations: GET /v1/migrations answers ${probe.status}: not measured`);
      else {
        for (let i = 1; i <= MIGRATIONS; i++) {
          const routing = (await world.rest("GET", "/tenants/tenant-123/routing")).body;
          const from = routing.primary.region as string;
          const toWest = from === "us-east-1";
          const database = `bench_mig_${i}`;
          await (toWest ? world.west : world.east).createDatabase(database);
          const t0 = performance.now();
          const accepted = await expectOk(
            world.rest("POST", "/migrations", {
              tenant_id: "tenant-123",
              source_region: from,
              target_region: toWest ? "us-west-2" : "us-east-1",
              target_connection_id: toWest ? WEST : EAST,
              target_database: database,
              migration_config: { bulk_copy_parallelism: 4, cdc_lag_threshold_seconds: 1, cutover_strategy: "Automatic", cleanup_source: false },
            }),
            202,
          );
          const done = await ended(world, `/migrations/${accepted.id}`);
          const t1 = performance.now();
          await sleep(500);
          const w = await windowOf(world, load, accepted.id);
          const c: Cutover = { kind: "migration", id: accepted.id, status: done.status, ...silences(load, w, t0, t1), serverMs: Number(done.downtime_ms ?? 0), totalMs: t1 - t0, message: done.message ?? "" };
          cutovers.push(c);
          log(`migration ${i}: ${c.status} in ${(c.totalMs / 1000).toFixed(1)} s; client-observed downtime ${c.clientMs.toFixed(1)} ms (${c.wholeMs.toFixed(1)} ms over the whole ${c.kind}), server downtime_ms ${c.serverMs}${c.message ? ` (${c.message})` : ""}; phases ${steps(done.phases)}; cutover parts ${await parts(world, accepted.id)}; ${silenceAt(load, w, t0, t1)}`);
          if (done.status !== "Completed") break;
        }
      }
    }

    await sleep(1_000);
    await load.stop();
    const lost = await lostWrites(world, load);
    const textbookLost = textbook.reduce((n, r) => n + r.lostWrites, 0);
    report(cutovers, textbook, load, lost + textbookLost);
  } finally {
    await load?.stop().catch(() => undefined);
    await world.close();
  }
}

// Each step's (phase's) name and duration, as the server reports it.
const steps = (xs: { step?: string; phase?: string; duration_ms?: number | string; duration_seconds?: number | string }[] = []) =>
  xs.map((x) => `${x.step ?? x.phase} ${x.duration_ms !== undefined ? `${x.duration_ms} ms` : `${x.duration_seconds ?? 0} s`}`).join(", ");

// What each part of the Cutover phase took, as its server recorded it in the job (the *_ms figures of the step's
// details), and when the fence was up and the routing switched, after the fence's ask.
async function parts(world: World, id: string): Promise<string> {
  const { rows } = await world.pool.query<{ details: Record<string, unknown>; state: Record<string, any> }>( // eslint-disable-line @typescript-eslint/no-explicit-any
    "SELECT s -> 'details' AS details, state FROM jobs, jsonb_array_elements(steps) s WHERE id = $1 AND s ->> 'step' = 'Cutover'",
    [id],
  );
  const d = rows[0]?.details ?? {};
  const took = Object.entries(d).filter(([k]) => k.endsWith("_ms")).map(([k, v]) => `${k.replace(/_ms$/, "")} ${v}`).join(", ");
  const state = rows[0]?.state ?? {};
  const since = Date.parse(state.fence?.blockingSince ?? "");
  const at = (t: string | undefined) => (t ? `+${Date.parse(t) - since}` : "?");
  const window = Number.isNaN(since) ? "" : `; fenced ${at(state.fence.fencedAt)}, switched ${at(state.routingSwitchedAt)}`;
  return `${took}${window}${await contention(world, id)}`;
}

// What the fence's lock waited for past a step, as the fence recorded it (evidence for a slow fence).
async function contention(world: World, id: string): Promise<string> {
  const { rows } = await world.pool.query<{ c: string[] | null }>("SELECT state -> 'fence' -> 'contention' AS c FROM jobs WHERE id = $1", [id]);
  const c = rows[0]?.c;
  return c?.length ? `; the fence's lock waited for ${c.join("; ")}` : "";
}

// Where a failover's window went: each record's time after the first blocked write (the fence's ask), on the
// control plane's and the server's clocks (one host here).
async function timeline(world: World, id: string): Promise<string> {
  const { rows } = await world.pool.query<{ state: Record<string, any>; steps: Record<string, any>[] }>("SELECT state, steps FROM jobs WHERE id = $1", [id]); // eslint-disable-line @typescript-eslint/no-explicit-any
  const job = rows[0];
  const since = Date.parse(job?.state.fence?.blockingSince ?? "");
  if (!job || Number.isNaN(since)) return "no fence";
  const at = (t: string | undefined) => (t ? `${Date.parse(t) - since}` : "?");
  const marks = [`fenced +${at(job.state.fence.fencedAt)}`];
  for (const step of job.steps.slice(1)) marks.push(`${step.step} +${at(step.started_at)}..+${at(step.completed_at)}`);
  marks.push(`switched +${at(job.state.routingSwitchedAt)}`);
  // And what the steps' parts took, as each recorded it (the *_ms figures of their details).
  const took = job.steps.flatMap((step) => Object.entries(step.details ?? {}).filter(([k]) => k.endsWith("_ms")).map(([k, v]) => `${k.replace(/_ms$/, "")} ${v}`));
  return `${marks.join(", ")} (${took.join(", ")})${await contention(world, id)}`;
}

// When a job's fence asked for its lock (its blockingSince) and when it switched the routing, as the job recorded
// them, on this process's clock (the server runs in it); NaN for what it did not do. Every acknowledgement the clients
// made until now is in load.ackTimes once this resolves.
async function windowOf(world: World, load: RemoteLoad, jobId: string): Promise<{ since: number; switched: number }> {
  await load.sync();
  const { rows } = await world.pool.query<{ since: string | null; switched: string | null }>(
    "SELECT state -> 'fence' ->> 'blockingSince' AS since, state ->> 'routingSwitchedAt' AS switched FROM jobs WHERE id = $1",
    [jobId],
  );
  return { since: Date.parse(rows[0]?.since ?? "") - performance.timeOrigin, switched: Date.parse(rows[0]?.switched ?? "") - performance.timeOrigin };
}

// The clients' longest silence in the cutover's window — from 1 s before the fence's ask to 1 s after the routing
// switch — and over the whole operation (a migration's copy and catch-up, the verification after the switch: the
// service's load on a host the clients share). Without a fence or a switch (a cutover that rolled back), the whole
// operation's.
function silences(load: RemoteLoad, w: { since: number; switched: number }, t0: number, t1: number): { clientMs: number; wholeMs: number } {
  const wholeMs = longestSilence(load.ackTimes, t0, t1);
  if (Number.isNaN(w.since) || Number.isNaN(w.switched)) return { clientMs: wholeMs, wholeMs };
  return { clientMs: longestSilence(load.ackTimes, Math.max(t0, w.since - 1_000), Math.min(t1, w.switched + 1_000)), wholeMs };
}

// Where the clients' longest silence lay against the fence's ask, in the cutover's window and, when it lay elsewhere,
// over the whole operation (a silence outside the window is something else than the cutover).
function silenceAt(load: RemoteLoad, w: { since: number; switched: number }, t0: number, t1: number): string {
  const { since, switched } = w;
  if (Number.isNaN(since)) return "no fence";
  const whole = silenceIn(load.ackTimes, t0, t1);
  const inWindow = Number.isNaN(switched) ? whole : silenceIn(load.ackTimes, Math.max(t0, since - 1_000), Math.min(t1, switched + 1_000));
  const said = `in the window, ${describe(load, since, inWindow)}`;
  return whole.after === inWindow.after ? said : `${said}; over the whole operation, ${describe(load, since, whole)}`;
}

// A silence: when, the clients' own stalls within it (their process held: a GC, or else), and what they did in it.
function describe(load: RemoteLoad, since: number, s: { after: number; until: number }): string {
  const own = load.stalls.filter((x) => x.at < s.until && x.at + x.ms > s.after);
  const stalled = own.length ? `; the clients' process stood still ${own.map((x) => `${x.ms.toFixed(0)} ms${x.kind === "gc" ? " (a GC)" : ""} at +${(x.at - since).toFixed(0)}`).join(", ")} within it` : "";
  const did = load.marks.filter((x) => x.at >= s.after && x.at <= s.until).map((x) => `${x.text} at +${(x.at - since).toFixed(0)}`);
  return `the clients' longest silence from +${(s.after - since).toFixed(0)} to +${(s.until - since).toFixed(0)} ms after the fence's ask${stalled}${did.length ? `; in it they ${did.join(", ")}` : ""}`;
}

async function expectOk(answer: Promise<{ status: number; body: any }>, status: number) { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await answer;
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function streaming(world: World, id: string) {
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", `replication ${id} to stream`, 900_000);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function ended(world: World, path: string): Promise<any> {
  for (;;) {
    const body = (await world.rest("GET", path)).body;
    if (body.status !== "InProgress" && body.status !== "Pending") return body;
    await sleep(20);
  }
}

// Acknowledged writes missing on the final primary, or not as last acknowledged.
async function lostWrites(world: World, load: RemoteLoad): Promise<number> {
  const routing = (await world.rest("GET", "/tenants/tenant-123/routing")).body;
  const db = await (routing.primary.connection_id === EAST ? world.east : world.west).connect(routing.primary.database);
  try {
    const expected = load.expected();
    const { rows } = await db.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM orders WHERE status LIKE 'b-%' GROUP BY status");
    const present = new Map(rows.map((r) => [r.status, Number(r.n)]));
    let lost = [...expected.orders].filter((s) => !present.has(s)).length;
    const duplicated = rows.filter((r) => Number(r.n) > 1).length;
    if (duplicated) log(`${duplicated} acknowledged insert(s) are on the final primary more than once`);
    const ids = [...expected.names.keys()];
    const { rows: names } = await db.query<{ id: string; name: string }>("SELECT id::text, name FROM users WHERE id::text = ANY($1)", [ids]);
    const named = new Map(names.map((r) => [r.id, r.name]));
    lost += ids.filter((id) => named.get(id) !== expected.names.get(id)).length;
    log(`final primary ${routing.primary.region} ${routing.primary.database}: ${expected.orders.size} acknowledged inserts and ${ids.length} renamed users checked; ${lost} lost, ${duplicated} duplicated`);
    return lost + duplicated;
  } finally {
    await db.end();
  }
}

function report(cutovers: Cutover[], textbook: TextbookRun[], load: RemoteLoad, lost: number) {
  const revision = JSON.parse(process.env.BENCH_REVISION ?? "{}");
  const of = (kind: Cutover["kind"]) => cutovers.filter((c) => c.kind === kind && c.status === "Completed");
  const failovers = of("failover");
  const migrations = of("migration");
  const book = textbook.map((r) => r.downtimeMs);
  const row = (name: string, xs: number[]) => `${name.padEnd(44)} ${String(xs.length).padStart(3)}  p50 ${pct(xs, 0.5).toFixed(1).padStart(8)} ms  p99 ${pct(xs, 0.99).toFixed(1).padStart(8)} ms`;
  console.log("");
  console.log(row("migration cutover, client-observed", migrations.map((c) => c.clientMs)));
  console.log(row("  the same over the whole migration", migrations.map((c) => c.wholeMs)));
  console.log(row("migration cutover, server downtime_ms", migrations.map((c) => c.serverMs)));
  console.log(row("failover, client-observed", failovers.map((c) => c.clientMs)));
  console.log(row("  the same over the whole failover", failovers.map((c) => c.wholeMs)));
  console.log(row("failover, server downtime_ms", failovers.map((c) => c.serverMs)));
  console.log(row("textbook cutover, client-observed", book));
  const failed = cutovers.filter((c) => c.status !== "Completed");
  if (failed.length) console.log(`not completed: ${failed.map((c) => `${c.kind} ${c.id} ${c.status}: ${c.message}`).join("; ")}`);
  console.log(`writes acknowledged ${load.ackTimes.length}, refused by a fence and retried ${load.refusals()}, deadlocks retried ${load.deadlocks()}, errors ${load.errors.length}${load.errors.length ? `: ${load.errors.slice(0, 3).join("; ")}` : ""}`);
  // Ours against the textbook: the migration's cutover when measured, else the failover's.
  const ours = migrations.length ? migrations.map((c) => c.clientMs) : failovers.map((c) => c.clientMs);
  const r2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
  const results = {
    bench: "cutover",
    revision,
    rows: USERS * 3 + 200,
    rate: RATE,
    connections: CONNECTIONS,
    migrations: migrations.length,
    failovers: failovers.length,
    textbook_runs: textbook.length,
    not_completed: failed.length,
    cutover_downtime_p50_ms: r2(pct(migrations.map((c) => c.clientMs), 0.5)),
    cutover_downtime_p99_ms: r2(pct(migrations.map((c) => c.clientMs), 0.99)),
    cutover_downtime_whole_p99_ms: r2(pct(migrations.map((c) => c.wholeMs), 0.99)),
    cutover_server_downtime_p99_ms: r2(pct(migrations.map((c) => c.serverMs), 0.99)),
    failover_downtime_p50_ms: r2(pct(failovers.map((c) => c.clientMs), 0.5)),
    failover_downtime_p99_ms: r2(pct(failovers.map((c) => c.clientMs), 0.99)),
    failover_downtime_whole_p99_ms: r2(pct(failovers.map((c) => c.wholeMs), 0.99)),
    failover_server_downtime_p99_ms: r2(pct(failovers.map((c) => c.serverMs), 0.99)),
    textbook_downtime_p50_ms: r2(pct(book, 0.5)),
    lost_writes: lost,
    load_errors: load.errors.length,
    vs_textbook_downtime: r2(pct(book, 0.5) / pct(ours, 0.5)),
    vs_textbook_compares: migrations.length ? "migration cutover p50" : "failover p50",
    targets: TARGETS,
  };
  console.log(JSON.stringify(results));
}

// Ctrl-C or a kill: the clients, the clusters and the server ended, their folders removed, before leaving.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`${signal}: stopping the clients, the clusters and the server\n`);
    void (async () => {
      await running.load?.stop().catch(() => undefined);
      await running.world?.close().catch(() => undefined);
    })().finally(() => process.exit(130));
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
