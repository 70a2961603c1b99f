// The spec's pagination (§2.1.3): page from 1, page_size from 1 to 100; the
// bounds are the contract's (the OpenAPI document states the same).
import { PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX } from "@heliosdb/replication-proto";
import { apiError } from "../transport/errors";

export const MAX_PAGE_SIZE = PAGE_SIZE_MAX;

/** Page and page size with the spec's defaults (1, 50) and bound (100). */
export function paging(page: number, pageSize: number): { page: number; pageSize: number } {
  const violations = [];
  if (page < 0) violations.push({ field: "page", description: "must be 1 or more" });
  if (pageSize < 0 || pageSize > MAX_PAGE_SIZE) violations.push({ field: "page_size", description: `must be from 1 to ${MAX_PAGE_SIZE}` });
  if (violations.length > 0) throw apiError("INVALID_REQUEST", "invalid pagination", { violations });
  return { page: page || 1, pageSize: pageSize || PAGE_SIZE_DEFAULT };
}
