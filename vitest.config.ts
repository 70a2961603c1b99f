import { defineConfig } from "vitest/config";

// One run over every package: each package's own vitest.config.ts is a project.
export default defineConfig({
  test: {
    projects: ["packages/*"],
    // Two test files at a time, also on two cores (vitest's default would be one): most of a file's
    // time is spent waiting on PostgreSQL and on servers it started, not on the CPU.
    maxWorkers: 2,
  },
});
