// What a replication pipeline is given: the replication (its databases and
// configuration), the services it uses, and how a start begins.
import type { ReplicationConfig } from "@heliosdb/replication-proto";
import type pg from "pg";
import type { SealedBatch } from "../codec/codec";
import type { BackoffOptions } from "../failure";
import type { KeyProvider } from "../transform/keys";
import type { TokenVault } from "../transform/token-vault";
import type { History } from "./figures";
import type { WorkerPool } from "./worker-pool";

export interface ReplicationSpec {
  replicationId: string;
  tenantId: string;
  source: { connection: pg.ClientConfig; schema: string };
  target: { connection: pg.ClientConfig; schema: string };
  config: ReplicationConfig;
}

export interface EngineEvent {
  replicationId: string;
  /** e.g. StatusChanged, ReplicationError, ConflictResolved, REPLICATION_LAG_EXCEEDED, WalRetentionHigh. */
  type: string;
  severity: "Info" | "Warning" | "Error" | "Critical";
  message: string;
  details: Record<string, string>;
}

export interface EngineDeps {
  keys: KeyProvider;
  vault?: TokenVault;
  onEvent?: (event: EngineEvent) => void;
  /** Between the watch's beats on the source: figures, alerts, and a heartbeat when the stream is silent (default 1000). */
  heartbeatIntervalMs?: number;
  /**
   * A heartbeat is sent only once the stream has delivered nothing for this
   * long (default 30 intervals; see watch.ts): a stream that delivers shows
   * it runs.
   */
  heartbeatIdleMs?: number;
  /** Retained WAL above which a paused replication warns (default 1 GiB). */
  walRetentionWarningBytes?: number;
  /** The trip of sealed batches from reader to applier; tests tamper with it. */
  transport?: (sealed: SealedBatch) => Promise<SealedBatch>;
  /** Shared by the replications of a process: initial syncs wait for a worker, by priority. */
  pool?: WorkerPool;
  /** Pages per range when the initial sync splits a large table among workers (default 16384 = 128 MB). */
  snapshotRangePages?: number;
  /** Stream values in binary format where every type allows it (default true; see source/binary-transfer.ts). */
  binaryTransfer?: boolean;
  /** What the control plane remembers of the replication (its last status, the time it ran before). */
  history?: History;
  /** Delays between attempts after a failure that can pass (default 1 s doubling to 30 s, jittered). */
  retry?: BackoffOptions;
}

export interface StartOptions {
  /**
   * "auto" (default): resume from the checkpoint, or sync from scratch;
   * "resync": copy everything again (the transforms changed); or an LSN to
   * stream from.
   */
  fromCheckpoint?: string;
  initialSyncParallelism?: number;
}
