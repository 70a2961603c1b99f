// The demo's writer on a real cluster that goes away and comes back on the
// same port: it says so once per tenant, says once that it resumed, and
// writes again.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { afterAll, expect, test } from "vitest";
import { startEmbedded, type EmbeddedDatabase } from "../store/embedded";
import { tempDataDir } from "../testing/bin-process";
import { fixedPrimary, seedTenant123, seedTenant456, startDemoWriter, type DemoWriter } from "./seed";

const root = tempDataDir();
const clusters: EmbeddedDatabase[] = [];
let writer: DemoWriter | undefined;

afterAll(async () => {
  await writer?.stop();
  await Promise.all(clusters.map((c) => c.stop().catch(() => undefined)));
  rmSync(root, { recursive: true, force: true });
});

async function orders(db: EmbeddedDatabase): Promise<number> {
  const client = new pg.Client({ connectionString: db.url("production_db") });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>("SELECT count(*) AS n FROM orders")).rows[0]!.n);
  } finally {
    await client.end();
  }
}

test("the demo writer reports an outage once, and resumes writing when the database is back", async () => {
  const dir = join(root, "us-east-1");
  const east = await startEmbedded(dir, "demo", { log: () => undefined });
  clusters.push(east);
  const admin = new pg.Client({ connectionString: east.url() });
  await admin.connect();
  await admin.query("CREATE DATABASE production_db");
  await admin.query("CREATE DATABASE tenant_456_db");
  await admin.end();
  for (const [database, seed] of [["production_db", seedTenant123], ["tenant_456_db", seedTenant456]] as const) {
    const client = new pg.Client({ connectionString: east.url(database) });
    await client.connect();
    await seed(client);
    await client.end();
  }
  const seeded = await orders(east);

  const lines: string[] = [];
  writer = startDemoWriter({ tenant123: fixedPrimary(east.url("production_db")), tenant456: fixedPrimary(east.url("tenant_456_db")) }, (line) => void lines.push(line), {
    intervalMs: 50,
  });
  await waitFor(async () => (await orders(east)) > seeded + 3, "the writer to write");

  await east.stop();
  // Many ticks against a database that is gone.
  await waitFor(() => lines.length >= 2, "the writer to notice the outage");
  await new Promise((r) => setTimeout(r, 1_000));
  // Once for each tenant (each writes on its own loop).
  expect(lines).toHaveLength(2);
  expect(lines.map((l) => l.match(/^demo writer: cannot write (tenant-\d+)'s data \(.+\); writing resumes when its database answers$/)?.[1]).sort()).toEqual(["tenant-123", "tenant-456"]);
  for (const line of lines) expect(line).not.toContain(":demo@"); // no password

  const back = await startEmbedded(dir, "demo", { port: east.port, log: () => undefined });
  clusters.push(back);
  const before = await orders(back);
  await waitFor(() => lines.length >= 4, "the writer to resume");
  await waitFor(async () => (await orders(back)) > before + 3, "the writer to write again");
  expect(lines.slice(2).sort()).toEqual([
    "demo writer: tenant-123's database answers again; writing resumed",
    "demo writer: tenant-456's database answers again; writing resumed",
  ]);
}, 120_000);
