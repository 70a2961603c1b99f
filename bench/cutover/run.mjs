// npm run bench:cutover: bundles main.ts (bench/bundle.mjs) and runs it.
import { bundleAndRun } from "../bundle.mjs";

await bundleAndRun("cutover", ["main", "clients"]);
