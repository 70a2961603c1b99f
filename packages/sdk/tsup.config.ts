import { defineConfig } from "tsup";

// The main entry and /core run in browsers and Node (no Node built-in); /node is Node's (gRPC over node:http2,
// `ws`), and so is index.node, the main entry Node resolves (package.json's "node" condition).
export default defineConfig({
  entry: { index: "src/index.ts", "index.node": "src/index.node.ts", "core/index": "src/core/index.ts", "node/index": "src/node/index.ts" },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
});
