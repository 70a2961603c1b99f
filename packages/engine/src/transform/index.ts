// The row-level transform stage: anonymization, column compression, and the
// keys and token vault they rely on.
export * from "./anonymize";
export * from "./compress-columns";
export * from "./keys";
export * from "./pg-types";
export * from "./plan";
export * from "./token-vault";
