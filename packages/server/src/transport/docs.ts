// /v1/openapi.yaml and /docs. (Filled in by the OpenAPI work.)
import type { App } from "./listen";

export function docsHandler(): (req: Parameters<App>[0], res: Parameters<App>[1]) => boolean {
  return () => false;
}
