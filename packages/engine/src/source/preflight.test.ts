// Preflight names each reason a replication cannot run, against real servers.
import { randomBytes, randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { QoSTier, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { validate } from "../pipeline/setup";
import { startCluster, type Cluster } from "../testing/clusters";
import { MasterKeyProvider } from "../transform/keys";
import { PreflightError } from "./preflight";

let logical: Cluster;
let replica: Cluster;
const keys = new MasterKeyProvider(randomBytes(32));

beforeAll(async () => {
  [logical, replica] = await Promise.all([
    startCluster(["-c", "max_replication_slots=1"]),
    startCluster(["-c", "wal_level=replica"]),
  ]);
}, 120_000);
afterAll(async () => {
  await Promise.all([logical?.stop(), replica?.stop()]);
}, 60_000);

async function problems(cluster: Cluster, database: string, user = "postgres", config: MessageInitShape<typeof ReplicationConfigSchema> = {}) {
  const client = await cluster.connect(database);
  if (user !== "postgres") await client.query(`SET ROLE ${user}`);
  try {
    await validate(client, `heliosdb_${randomUUID().replace(/-/g, "")}`, "public", "tenant-123", create(ReplicationConfigSchema, config), { keys });
    return [];
  } catch (e) {
    if (!(e instanceof PreflightError)) throw e;
    return e.problems.map((p) => `${p.code}: ${p.message}`);
  } finally {
    await client.end();
  }
}

test("wal_level other than logical", async () => {
  const db = await replica.connect();
  await db.query("CREATE TABLE t (id int PRIMARY KEY)");
  await db.end();
  expect(await problems(replica, "postgres")).toEqual([
    "WAL_LEVEL: wal_level is 'replica' on the source; set wal_level = logical and restart PostgreSQL",
  ]);
}, 30_000);

test("no REPLICATION attribute, no free slot, no key, a type outside pg_catalog, Synchronous without superuser", async () => {
  await logical.createDatabase("app");
  const db = await logical.connect("app");
  await db.query(`
    CREATE ROLE app_user LOGIN;
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE people (id int PRIMARY KEY, mood mood);
    CREATE TABLE events (at timestamptz, what text);
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_user;`);
  await db.query("SELECT pg_create_logical_replication_slot('someone_else', 'pgoutput')");
  await db.end();
  expect(await problems(logical, "app", "app_user", { qosTier: QoSTier.SYNCHRONOUS })).toEqual([
    "REPLICATION_PRIVILEGE: the source user lacks the REPLICATION attribute: ALTER ROLE <user> REPLICATION",
    "NO_FREE_SLOT: every replication slot of the source is in use: raise max_replication_slots or drop an unused slot",
    "NO_KEY: table events has no primary key or replica identity index, so its rows cannot be identified: add a primary key, or ALTER TABLE ... REPLICA IDENTITY USING INDEX on a unique index",
    "UNSUPPORTED_TYPE: column people.mood has type mood, defined outside pg_catalog; only built-in types are replicated",
    "SYNCHRONOUS: the Synchronous tier sets the source's synchronous_standby_names, which needs a superuser connection",
  ]);
}, 30_000);
