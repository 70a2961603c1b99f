#!/usr/bin/env node
// protoc-gen-openapi, run from its TypeScript source (packages/proto/src/openapi)
// so that `buf generate` needs no build first: esbuild bundles the plugin into
// node_modules/.cache (where its package imports resolve), then it runs,
// reading the CodeGeneratorRequest from stdin.
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cache = join(root, "node_modules", ".cache", "protoc-gen-openapi");
const bundle = join(cache, `plugin-${process.pid}.mjs`);
mkdirSync(cache, { recursive: true });
try {
  await build({
    entryPoints: [join(root, "packages/proto/src/openapi/main.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "error",
  });
  await import(pathToFileURL(bundle).href);
} finally {
  rmSync(bundle, { force: true });
}
