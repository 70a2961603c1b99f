// The batch codec between the reader and the applier.
export { BatchFormatError, decodeBatch, encodeBatch, type BatchItem, type ChangeBatch } from "./batch";
export {
  BatchCodec,
  BatchIntegrityError,
  COMPRESSION,
  type BatchCodecOptions,
  type BatchCodecStats,
  type CompressionLevel,
  type SealedBatch,
} from "./codec";
