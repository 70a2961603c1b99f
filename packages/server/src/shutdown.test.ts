// A stop while the control-plane database is gone (its sessions frozen with
// SIGSTOP: connections stay open, nothing answers): the server exits by its
// deadline with a non-zero status, says what it was waiting for, and its
// embedded PostgreSQL still goes away. A second signal exits at once.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, afterEach, expect, test } from "vitest";
import { isAlive } from "./store/processes";
import { postmastersUnder, processes, spawnServer, tempDataDir, type ServerProcess } from "./testing/bin-process";

const dir = tempDataDir();
const servers: ServerProcess[] = [];
const frozen: number[] = [];

afterEach(async () => {
  for (const s of servers) s.kill("SIGKILL");
  await Promise.all(servers.map((s) => s.exited));
  for (const pid of frozen.splice(0)) if (isAlive(pid)) process.kill(pid, "SIGCONT");
  // The watchdog of a killed server stops its cluster; this waits for it (and helps if it cannot).
  await waitFor(() => postmastersUnder(dir).length === 0, "the test's PostgreSQL to stop", 20_000).catch(() => {
    for (const pid of postmastersUnder(dir)) process.kill(pid, "SIGQUIT");
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A server on an embedded control plane whose sessions (the postmaster's children) are then frozen. */
async function serverWithFrozenControlPlane(shutdownTimeout: number): Promise<ServerProcess> {
  const server = await spawnServer(["serve", "--data-dir", dir, "--port", "0", "--grpc-port", "0", "--shutdown-timeout", String(shutdownTimeout)]);
  servers.push(server);
  await server.ready();
  const postmaster = Number(readFileSync(join(dir, "controlplane", "data", "postmaster.pid"), "utf8").split("\n")[0]);
  for (const p of processes().filter((p) => p.ppid === postmaster)) {
    process.kill(p.pid, "SIGSTOP");
    frozen.push(p.pid);
  }
  expect(frozen.length).toBeGreaterThan(0);
  return server;
}

test("SIGTERM with the control plane gone: exit 1 by the deadline, naming what it waited for; the embedded PostgreSQL still stops", async () => {
  const server = await serverWithFrozenControlPlane(6);
  const asked = Date.now();
  server.kill("SIGTERM");
  const { code } = await server.exited;
  const took = Date.now() - asked;
  expect(code, server.output()).toBe(1);
  expect(took).toBeLessThan(6_000 + 10_000);
  expect(server.output()).toMatch(/shutdown: still waiting for the (listeners to close and the replications to pause|control-plane connections to close) after \d+\.\d s/);
  expect(server.output()).toContain("stopped, but not everything above finished within 6 s (--shutdown-timeout)");
  // Immediate shutdown: PostgreSQL kills its frozen children itself, then exits — nobody resumes them.
  await waitFor(() => postmastersUnder(dir).length === 0, "the embedded PostgreSQL to stop", 30_000);
}, 120_000);

test("a second signal exits at once", async () => {
  const server = await serverWithFrozenControlPlane(120);
  server.kill("SIGTERM");
  await waitFor(() => server.output().includes("SIGTERM: shutting down within 120 s"), "the server to start shutting down", 10_000);
  server.kill("SIGINT");
  const { code } = await server.exited;
  expect(code, server.output()).toBe(130);
  expect(server.output()).toContain("SIGINT again: exiting now");
}, 120_000);
