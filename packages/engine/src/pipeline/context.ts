// What the files of pipeline/ share with the ReplicationPipeline that wires
// them: the replication (read at each use: reconfigure() replaces it), the
// current run's stages (each set as the run builds it, cleared when it
// halts), and where status and events go.
import type pg from "pg";
import type { Applier } from "../apply/applier";
import type { BatchCodec } from "../codec/codec";
import type { ReplicationConnection } from "../source/replication-connection";
import type { Lsn } from "../types";
import type { Batcher } from "./batcher";
import type { EngineStatus, Figures } from "./figures";
import type { Setup } from "./setup";
import type { EngineDeps, EngineEvent, ReplicationSpec } from "./spec";

export interface Stages {
  setup?: Setup;
  /** The run's target session. */
  target?: pg.Client;
  codec?: BatchCodec;
  applier?: Applier;
  stream?: ReplicationConnection;
  batcher?: Batcher;
  /** Whether the stream carries values in binary format (restart.ts). */
  binary: boolean;
  /** Tables copied under a snapshot of their own while the slot lived: their changes committed before it are skipped. */
  skipBefore: Map<string, Lsn>;
}

export interface PipelineContext {
  readonly slotName: string;
  readonly publicationName: string;
  readonly deps: EngineDeps;
  readonly figures: Figures;
  readonly stages: Stages;
  /** The replication as configured now. */
  spec(): ReplicationSpec;
  /** The current attempt's: a halt aborts it, the next attempt replaces it. */
  signal(): AbortSignal;
  setStatus(status: EngineStatus): void;
  emit(type: string, severity: EngineEvent["severity"], message: string, details: Record<string, string>): void;
  /** A failure of the running stream: the run halts, and a new attempt follows if it can pass. */
  fail(error: unknown): void;
}
