// npm run bench:api: bundles main.ts and its load generator load.ts (bench/bundle.mjs) and runs it.
import { bundleAndRun } from "../bundle.mjs";

await bundleAndRun("api", ["main", "load"]);
