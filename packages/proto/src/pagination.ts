// The spec's pagination (§2.1.3), part of the contract: every List request's
// `page` counts from 1 and its `page_size` from 1 to PAGE_SIZE_MAX (0, unset:
// the defaults, page 1 and PAGE_SIZE_DEFAULT). The server enforces these
// bounds and the OpenAPI document states them.
export const PAGE_SIZE_DEFAULT = 50;
export const PAGE_SIZE_MAX = 100;

/** The bounds of a List request's paging field (`page`, `page_size`), for the OpenAPI document. */
export function pagingBounds(fieldName: string): { minimum: number; maximum?: number } | undefined {
  if (fieldName === "page") return { minimum: 1 };
  if (fieldName === "page_size") return { minimum: 1, maximum: PAGE_SIZE_MAX };
  return undefined;
}
