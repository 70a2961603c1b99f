// The cutover primitives failover and live migration are built from (docs/engine.md, "Cutover primitives"):
// fence the tenant's writes on the source, drain the pipeline to the fence's final LSN (ReplicationPipeline.drainTo),
// copy sequence positions and column defaults, verify, check the new primary takes writes, and unfence on the way back.
export { fence, isFenced, FenceError, FENCE_MESSAGE_PREFIX, FENCE_SQLSTATE, FENCE_TRIGGER, type Fence, type FenceOptions } from "./fence";
export { unfence, type Unfenced } from "./unfence";
export { planSequences, syncSequences, type SequencePlan, type SequenceSync } from "./sequences";
export { verify, type TableVerification, type Verification, type VerifyOptions } from "./verify";
export { holdSnapshot, type HeldSnapshot } from "./snapshot";
export { markPosition, MARK_MESSAGE_PREFIX } from "./mark";
export { checkWritable, copyColumnDefaults, tenantTables, type ColumnDefault, type DefaultsCopy, type WritableCheck } from "./promote";
export { TableNotFoundError, type TenantDatabase } from "./tables";
export { dropTenantTables } from "./cleanup";
export { lockWaits } from "./waits";
export { DrainError, type DrainOptions } from "../pipeline/drain";
// The applied position as the target holds it, readable from any process (a drain watched from another node than the pipeline's).
export { readCheckpoint, type Checkpoint } from "../apply/checkpoint";
