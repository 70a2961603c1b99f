#!/usr/bin/env node
// Runs rest-types.ts on the contract's descriptors as packages/proto/src holds
// them (not its dist, which may predate a `buf generate`): esbuild bundles
// the generator with the proto package's source into node_modules/.cache,
// as scripts/protoc-gen-openapi.mjs does, then it writes
// src/internal/rest-types.ts and src/internal/enum-names.ts.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");
const proto = join(sdk, "../proto/src/index.ts");
const cache = join(sdk, "../../node_modules/.cache/sdk-rest-types");
const bundle = join(cache, `rest-types-${process.pid}.mjs`);
mkdirSync(cache, { recursive: true });
try {
  await build({
    entryPoints: [join(sdk, "scripts/rest-types.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // The proto package from source; @bufbuild/protobuf stays one shared external copy.
    alias: { "@heliosdb/replication-proto": proto },
    external: ["@bufbuild/protobuf", "@bufbuild/protobuf/*"],
    logLevel: "error",
  });
  const { generate, services } = await import(pathToFileURL(bundle).href);
  const output = generate(services);
  writeFileSync(join(sdk, "src/internal/rest-types.ts"), output.restTypes);
  writeFileSync(join(sdk, "src/internal/enum-names.ts"), output.enumNames);
} finally {
  rmSync(bundle, { force: true });
}
