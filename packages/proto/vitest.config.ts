import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Two test files run at a time on two cores (../../vitest.config.ts): a test that signs in, hashes or starts a
    // server may take longer than vitest's 5 s default without anything being wrong. A hang still fails.
    testTimeout: 30_000,
  },
});
