// npm run bench:sdk: bundles main.ts (bench/bundle.mjs) and runs it.
import { bundleAndRun } from "../bundle.mjs";

await bundleAndRun("sdk", ["main"]);
