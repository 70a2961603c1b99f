// `npm start`: installs nothing by itself; runs the reference server's demo
// (`heliosdb-replication-server serve --demo`) once the server package exists.
import { existsSync } from "node:fs";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../packages/server/dist/bin.js", import.meta.url));
if (!existsSync(bin)) {
  console.error(
    [
      "The reference server (packages/server) is not built yet in this repository:",
      "the contract, code generation and the REST mapping are in place, and the",
      "server that serves them is the next milestone. See README.md, 'Status'.",
    ].join("\n"),
  );
  process.exit(1);
}
const child = spawn(process.execPath, [bin, "serve", "--demo", ...process.argv.slice(2)], { stdio: "inherit" });
child.on("exit", (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
