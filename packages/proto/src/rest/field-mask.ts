// The update mask a PATCH body implies: PATCH changes exactly the fields the
// body holds, so "set max_lag_seconds to 0" and "leave it alone" differ.
import type { DescMessage, JsonValue } from "@bufbuild/protobuf";
import { isWellKnown, restFieldName, restUnion } from "./names";

/**
 * The proto paths of the fields present in a REST body, e.g.
 * `{"config": {"priority": 95}}` → ["config.priority"]. Messages are walked
 * into (an empty object adds nothing); lists, maps, well-known types, tagged
 * unions and nulls are leaves.
 * Keys the message does not know are skipped: fromRest reports them.
 */
export function restBodyPaths(schema: DescMessage, body: JsonValue, prefix = ""): string[] {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return [];
  const paths: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    const field = schema.fields.find((f) => restFieldName(f) === key);
    if (!field || field.name === "update_mask") continue;
    const path = prefix + field.name;
    const walkInto =
      field.fieldKind === "message" &&
      !isWellKnown(field.message) &&
      !field.message.oneofs.some((oneof) => restUnion(oneof)) &&
      value !== null;
    // An empty object changes nothing; null clears the whole message.
    paths.push(...(walkInto ? restBodyPaths(field.message!, value, `${path}.`) : [path]));
  }
  return paths;
}
