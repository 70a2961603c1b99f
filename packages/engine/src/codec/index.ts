// The batch codec between the reader and the applier.
export { BatchFormatError, encodeBatch, type BatchItem, type ChangeBatch } from "./batch";
export { decodeBatch } from "./batch-decode";
export {
  BatchCodec,
  BatchIntegrityError,
  COMPRESSION,
  type BatchCodecOptions,
  type BatchCodecStats,
  type CompressionLevel,
  type SealedBatch,
} from "./codec";
