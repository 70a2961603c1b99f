// The browser entry: it bundles for the browser (no Node built-in: esbuild
// refuses one for platform "browser"), holds REST, Connect and gRPC-web, and
// stays within its budget of 60 kB minified and gzipped. /node alone carries
// node:http2.
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { expect, test } from "vitest";

const bundle = async (entry: string, platform: "browser" | "node") => {
  const result = await build({ entryPoints: [new URL(entry, import.meta.url).pathname], bundle: true, platform, format: "esm", minify: true, write: false, logLevel: "silent" });
  return result.outputFiles[0]!.contents;
};

test("the main entry bundles for the browser within 60 kB min+gzip; the gRPC entry is Node's", async () => {
  const browser = await bundle("../src/index.ts", "browser");
  const gzipped = gzipSync(browser).length;
  console.log(`browser entry: ${browser.length} bytes minified, ${gzipped} gzipped`);
  expect(gzipped).toBeLessThan(60 * 1024);
  // Both binary protocols are in it (their content types), and the REST transport (the JSON mapping's reader).
  const text = new TextDecoder().decode(browser).toLowerCase();
  for (const needed of ["application/grpc-web", "application/proto", "idempotency-key"]) expect(text.includes(needed), needed).toBe(true);
  await expect(bundle("../src/node/index.ts", "browser")).rejects.toThrow(/node:http2|http2/);
});
