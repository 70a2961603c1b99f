// A test bench for whole replications: two real clusters, a seeded tenant per
// test in databases of its own, a pipeline over them, and teardown.
import { randomBytes, randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { QoSTier, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import type pg from "pg";
import { ReplicationPipeline, type EngineDeps, type EngineEvent } from "../pipeline";
import { MasterKeyProvider } from "../transform/keys";
import { parseLsn } from "../types";
import { startCluster, type Cluster } from "./clusters";
import { seedTenant, waitFor } from "./tenant";

export type Config = MessageInitShape<typeof ReplicationConfigSchema>;

export interface ReplicationOptions {
  users?: number;
  deps?: Partial<EngineDeps>;
  /** Runs on the seeded source database before the pipeline is created. */
  prepare?: (db: pg.Client) => Promise<void>;
}

export interface Bench {
  source: Cluster;
  target: Cluster;
  keys: MasterKeyProvider;
  /** A seeded tenant and a (not yet started) replication of it. */
  replicate(config: Config, options?: ReplicationOptions): Promise<{
    name: string;
    db: pg.Client;
    replica: pg.Client;
    pipeline: ReplicationPipeline;
    events: EngineEvent[];
    /** Waits until the replica has applied everything the source has committed so far. */
    caughtUp(): Promise<void>;
    /**
     * Another pipeline object for the same replication, as a restarted
     * process (or another node) makes it, optionally with a changed
     * configuration; `caughtUp` then follows it.
     */
    twin(config?: Config, deps?: Partial<EngineDeps>): ReplicationPipeline;
  }>;
  /** Stops every pipeline, closes every session, stops both clusters. */
  close(): Promise<void>;
}

export async function startBench(): Promise<Bench> {
  const [source, target] = await Promise.all([startCluster(), startCluster()]);
  const keys = new MasterKeyProvider(randomBytes(32));
  const cleanup: (() => Promise<unknown>)[] = [];
  return {
    source,
    target,
    keys,
    async replicate(config, options = {}) {
      const name = `t_${randomUUID().slice(0, 8)}`;
      await Promise.all([source.createDatabase(name), target.createDatabase(name)]);
      const db = await source.connect(name);
      const replica = await target.connect(name);
      await seedTenant(db, options.users ?? 100);
      await options.prepare?.(db);
      const events: EngineEvent[] = [];
      const replicationId = randomUUID();
      const make = (c: Config, extra: Partial<EngineDeps> = {}) =>
        new ReplicationPipeline(
          {
            replicationId,
            tenantId: "tenant-123",
            source: { connection: { connectionString: source.url(name) }, schema: "public" },
            target: { connection: { connectionString: target.url(name) }, schema: "public" },
            config: create(ReplicationConfigSchema, { qosTier: QoSTier.PREMIUM, maxLagSeconds: 5, ...c }),
          },
          { keys, heartbeatIntervalMs: 100, onEvent: (e) => events.push(e), ...options.deps, ...extra },
        );
      let current = make(config);
      const pipeline = current;
      cleanup.push(() => current.stop(), () => db.end(), () => replica.end());
      const caughtUp = async () => {
        const { rows } = await db.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
        const lsn = parseLsn(rows[0]!.lsn);
        await waitFor(() => (current.read().lastCheckpoint?.lsn ?? 0n) >= lsn, "the replica to catch up");
      };
      const twin = (changed?: Config, extra?: Partial<EngineDeps>) => (current = make(changed ?? config, extra));
      return { name, db, replica, pipeline, events, caughtUp, twin };
    },
    async close() {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
      await Promise.all([source.stop(), target.stop()]);
    },
  };
}
