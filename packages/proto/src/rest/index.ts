export { is64Bit, toRest, toRestRequest } from "./to-rest";
export { toRestJson } from "./write-rest";
export { fromRest } from "./from-rest";
export { readRest } from "./read-rest";
export { restQueryToJson } from "./query";
export { restBodyPaths } from "./field-mask";
export { RestMappingError, type FieldViolation } from "./errors";
export { elementKind, hasPresence, isInputOnly, isUuid, isWellKnown, restEnumValue, restEnumValues, restFieldName, restTag, restUnion } from "./names";
export { httpRoutes, pathTemplate, pathVariables, type HttpRoute, type PathPart } from "./routes";
