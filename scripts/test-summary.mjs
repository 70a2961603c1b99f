// Prints the plain closing line CI reads ("tests: N passed, N failed") from
// vitest's JSON report, and fails when no test ran.
import { readFileSync } from "node:fs";

const report = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { numPassedTests: passed, numFailedTests: failed, numPendingTests: skipped, numTotalTests: total } = report;
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
if (total === 0 || failed > 0) process.exit(1);
