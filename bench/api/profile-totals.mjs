// Total (inclusive) time of the functions of a .cpuprofile, beside the self
// time that `--profile` prints: what a function and everything it called
// cost, per request. Async functions count per synchronous slice (the work
// after an `await` is a new stack).
//
//   node bench/api/profile-totals.mjs bench/api/profiles/REST-project-.cpuprofile [requests] [filter]
//
// `requests` turns milliseconds into µs per request; `filter` keeps the
// functions whose name or file contains it (e.g. packages/server).
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";

const [file, requestsArg, filter] = process.argv.slice(2);
if (!file) {
  console.error("usage: profile-totals.mjs <file.cpuprofile> [requests] [filter]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8"));
const requests = Number(requestsArg) || 0;
const parent = new Map();
const byId = new Map();
for (const node of profile.nodes) {
  byId.set(node.id, node);
  for (const child of node.children ?? []) parent.set(child, node.id);
}
// The bundle's frames are named by their source (bench/api/.build/*.mjs.map).
const maps = new Map();
const sourceMap = (url) => {
  if (!maps.has(url)) {
    const path = url.startsWith("file://") ? fileURLToPath(url) : "";
    maps.set(url, path.endsWith(".mjs") && existsSync(`${path}.map`) ? new SourceMap(JSON.parse(readFileSync(`${path}.map`, "utf8"))) : undefined);
  }
  return maps.get(url);
};
const name = (node) => {
  let { functionName, url, lineNumber, columnNumber } = node.callFrame;
  const entry = url ? sourceMap(url)?.findEntry(lineNumber, columnNumber) : undefined;
  if (entry?.originalSource) [url, lineNumber] = [entry.originalSource, entry.originalLine];
  const where = url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\//, "").replace(/^.*?\/?(packages|bench)\//, "$1/");
  return `${functionName || "(anonymous)"} ${where ? `[${where}:${lineNumber + 1}]` : ""}`;
};
const self = new Map();
const total = new Map();
let all = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  all += dt;
  const seen = new Set();
  const leaf = name(byId.get(id));
  self.set(leaf, (self.get(leaf) ?? 0) + dt);
  for (let n = id; n !== undefined; n = parent.get(n)) {
    const key = name(byId.get(n));
    if (seen.has(key)) continue;
    seen.add(key);
    total.set(key, (total.get(key) ?? 0) + dt);
  }
});
const rows = [...total.entries()].filter(([key]) => !filter || key.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, 60);
const ms = (us) => (us / 1000).toFixed(0).padStart(7);
const per = (us) => (requests ? `${(us / requests).toFixed(1).padStart(7)} µs/req` : "");
console.log(`${file}: ${(all / 1e6).toFixed(2)} s sampled${requests ? `, ${requests} requests` : ""}`);
console.log(`  total ms         self ms`);
for (const [key, t] of rows) console.log(`${ms(t)} ${per(t)}  ${ms(self.get(key) ?? 0)}  ${key}`);
