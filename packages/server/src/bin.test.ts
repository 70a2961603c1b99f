// The bin's command line as a user meets it: help in every spelling exits 0,
// a command line it cannot run prints the usage with the error and exits 2.
import { expect, test } from "vitest";
import { runServer } from "./testing/bin-process";

test.each(["--help", "-h", "help", "serve --help", "serve -h", "token --help"])("`%s` prints the usage and exits 0", async (line) => {
  const { code, stdout, stderr } = await runServer(line.split(" "));
  expect(code, stderr).toBe(0);
  expect(stdout).toMatch(/^usage:\n {2}heliosdb-replication-server \[serve\] \[options\]/);
  expect(stdout).toContain("--shutdown-timeout SECS");
  expect(stdout).toContain("--allow-hosts LIST");
  expect(stdout).toContain("--tls-cert FILE");
  expect(stderr).toBe("");
}, 30_000);

test.each([
  [["--bogus"], "Unknown option '--bogus'"],
  [["serve", "--port", "http"], "--port: not a port: http"],
  [["serve", "--shutdown-timeout", "soon"], "--shutdown-timeout: not a number of seconds above 0: soon"],
  [["serve", "--max-body-bytes", "1MB"], "--max-body-bytes: not a number of bytes above 0: 1MB"],
  [["serve", "--cors-origins", "dashboard.example.com"], "--cors-origins: not an origin (scheme://host[:port]) or \"*\": dashboard.example.com"],
  [["serve", "--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"],
  [["token", "--tenant", "t"], "token: --roles is required"],
  [["serve", "--allow-hosts", "10.0.0.0/33"], '--allow-hosts: "10.0.0.0/33" is not a host, address or CIDR'],
  [["frobnicate"], 'unknown command "frobnicate"'],
])("%j prints the error and the usage, and exits 2", async (args, error) => {
  const { code, stdout, stderr } = await runServer(args);
  expect(code, stderr).toBe(2);
  expect(stderr).toContain(error);
  expect(stderr).toContain("usage:\n");
  expect(stdout).toBe("");
}, 30_000);
