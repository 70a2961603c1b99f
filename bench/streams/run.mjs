// npm run bench:streams: bundles main.ts and its subscriber process (bench/bundle.mjs) and runs it.
import { bundleAndRun } from "../bundle.mjs";

await bundleAndRun("streams", ["main", "subscribers"]);
