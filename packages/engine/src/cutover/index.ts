// The cutover primitives failover and live migration are built from (docs/engine.md, "Cutover primitives").
export { fence, unfence, FenceError, FENCE_MESSAGE_PREFIX, FENCE_SQLSTATE, FENCE_TRIGGER, type Fence, type FenceOptions, type Unfenced } from "./fence";
export { TableNotFoundError, type TenantDatabase } from "./tables";
