// The API's documentation: the OpenAPI 3.1 document that `buf generate`
// writes from the contract (packages/server/openapi/openapi.yaml) at
// /v1/openapi.yaml and /v1/openapi.json, and Swagger UI at /docs, served from
// the swagger-ui-dist package on disk: nothing comes from a CDN.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConnectError } from "@connectrpc/connect";
import { parse } from "yaml";
import { apiError, envelope } from "./errors";
import { REQUEST_ID, requestIdOf } from "./interceptors";
import type { App } from "./listen";

const PACKAGE = "@heliosdb/replication-server";

export interface DocsOptions {
  /** The OpenAPI document (default: openapi/openapi.yaml of this package). */
  openApiFile?: string;
  /** swagger-ui-dist's folder (default: where Node resolves the package). */
  swaggerUiDir?: string;
}

/**
 * The package's own openapi/openapi.yaml, found from this module upwards:
 * the same from src/transport (tests, tsx) and from the built dist/.
 */
export function openApiFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === PACKAGE) {
      return join(dir, "openapi", "openapi.yaml");
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`${PACKAGE}: cannot find the package's folder from ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The folder of the swagger-ui-dist package. */
export function swaggerUiDir(): string {
  return dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
}

// Swagger UI's page: every asset from /docs/ on this server.
const INDEX_HTML = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>HeliosDB Tenant Replication API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;

// Replaces the package's swagger-initializer.js (which points at a demo API);
// validatorUrl "none" keeps Swagger UI from calling its online validator.
const INITIALIZER_JS = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/v1/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: "none",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
`;

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  png: "image/png",
  map: "application/json; charset=utf-8",
};

interface Body {
  type: string;
  data: Buffer;
}

type Request = Parameters<App>[0];
type Response = Parameters<App>[1];

/**
 * A handler for GET /v1/openapi.yaml, /v1/openapi.json, /docs and /docs/*;
 * returns false for every other path. Files are read once, on first use.
 */
export function docsHandler(options: DocsOptions = {}): (req: Request, res: Response) => boolean {
  let spec: { yaml: Body; json: Body } | undefined;
  const assets = new Map<string, Body | undefined>();
  const loadSpec = () => {
    if (!spec) {
      const text = readFileSync(options.openApiFile ?? openApiFile(), "utf8");
      spec = {
        yaml: { type: "application/yaml; charset=utf-8", data: Buffer.from(text) },
        json: { type: "application/json; charset=utf-8", data: Buffer.from(JSON.stringify(parse(text))) },
      };
    }
    return spec;
  };
  // A file of swagger-ui-dist by plain name (no folders), of a type it serves.
  const asset = (name: string): Body | undefined => {
    if (!assets.has(name)) {
      const ext = /^[\w.-]+\.(js|css|png|map)$/.exec(name)?.[1];
      const file = ext ? join(options.swaggerUiDir ?? swaggerUiDir(), name) : undefined;
      assets.set(name, file && existsSync(file) ? { type: TYPES[ext!]!, data: readFileSync(file) } : undefined);
    }
    return assets.get(name);
  };
  const html = { type: "text/html; charset=utf-8", data: Buffer.from(INDEX_HTML) };
  const initializer = { type: TYPES.js!, data: Buffer.from(INITIALIZER_JS) };

  return (req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const isDocs = path === "/docs" || path.startsWith("/docs/");
    if (path !== "/v1/openapi.yaml" && path !== "/v1/openapi.json" && !isDocs) return false;
    const requestId = requestIdOf(req.headers[REQUEST_ID] as string | undefined);
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("Allow", "GET, HEAD");
        throw apiError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${path}`, { allow: ["GET", "HEAD"] });
      }
      let body: Body | undefined;
      if (path === "/v1/openapi.yaml") body = loadSpec().yaml;
      else if (path === "/v1/openapi.json") body = loadSpec().json;
      else if (path === "/docs" || path === "/docs/" || path === "/docs/index.html") body = html;
      else if (path === "/docs/swagger-initializer.js") body = initializer;
      else body = asset(path.slice("/docs/".length));
      if (!body) throw apiError("NOT_FOUND", `no such file: ${path}`, { path });
      res.writeHead(200, {
        "Content-Type": body.type,
        "Content-Length": body.data.length,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
      });
      if (req.method === "HEAD") res.end();
      else res.end(body.data);
    } catch (e) {
      // Ours as they are; a missing or unreadable file without its path.
      const error = e instanceof ConnectError ? e : apiError("INTERNAL_ERROR", "the OpenAPI document cannot be read (it is written by `buf generate`)");
      const { status, body } = envelope(error, requestId);
      const text = JSON.stringify(body);
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "X-Request-Id": requestId });
      res.end(text);
    }
    return true;
  };
}
