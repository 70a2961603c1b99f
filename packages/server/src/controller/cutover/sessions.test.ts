// A job's sessions against a real PostgreSQL: opened once and lent again to
// each later ask of the same job, another job's its own; ended by release;
// one the server ended is not lent again (the next ask opens new ones).
import { startCluster, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import { JobSessions } from "./sessions";

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);
afterAll(() => cluster?.stop(), 60_000);

const databases = async () => ({
  source: { connection: { connectionString: cluster.url("postgres") }, schema: "public" },
  target: { connection: { connectionString: cluster.url("postgres") }, schema: "public" },
});
const pid = async (db: { session?: { query: (q: string) => Promise<{ rows: { pid: number }[] }> } }) => (await db.session!.query("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
const cutoverSessions = async () => {
  const admin = await cluster.connect();
  try {
    return (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'heliosdb_cutover'")).rows[0].n as number;
  } finally {
    await admin.end();
  }
};

test("lent again to the same job, its own to another; ended by release; a session the server ended is replaced", async () => {
  const sessions = new JobSessions();
  let opened = 0;
  const where = () => (opened++, databases());
  const first = await sessions.lend("job-1", where);
  const again = await sessions.lend("job-1", where);
  expect(opened).toBe(1);
  expect(await pid(again.source)).toBe(await pid(first.source));
  const other = await sessions.lend("job-2", where);
  expect(opened).toBe(2);
  expect(await pid(other.target)).not.toBe(await pid(first.target));
  expect(await cutoverSessions()).toBe(4);

  await sessions.release("job-2");
  expect(await cutoverSessions()).toBe(2);

  // The server ends one of job-1's sessions: the next ask opens a new pair.
  const ended = await pid(first.target);
  const admin = await cluster.connect();
  await admin.query("SELECT pg_terminate_backend($1)", [ended]);
  await admin.end();
  await waitFor(() => first.target.session!.query("SELECT 1").then(() => false, () => true), "the ended session to fail");
  const renewed = await sessions.lend("job-1", where);
  expect(opened).toBe(3);
  expect(await pid(renewed.target)).not.toBe(ended);
  await sessions.release("job-1");
  await sessions.release("job-1");
  expect(await cutoverSessions()).toBe(0);
}, 60_000);
