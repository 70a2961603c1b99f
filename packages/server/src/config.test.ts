// The destination policy's configuration: flags, then the environment, each
// entry checked at start rather than at the first connection.
import { expect, test } from "vitest";
import { describeConfig, serveConfig, UsageError } from "./config";

test("--allow-hosts and --deny-hosts: repeated or comma-separated flags win over the environment", () => {
  const env = { HELIOS_ALLOW_HOSTS: "192.168.0.0/16", HELIOS_DENY_HOSTS: "1.2.3.4, db.bad.example" };
  const config = serveConfig(["--allow-hosts", "10.0.0.0/8:5432,db.internal", "--allow-hosts", "[::1]:5432"], env);
  expect(config.allowHosts).toEqual(["10.0.0.0/8:5432", "db.internal", "[::1]:5432"]);
  expect(config.denyHosts).toEqual(["1.2.3.4", "db.bad.example"]);
  expect(serveConfig([], {})).toMatchObject({ allowHosts: [], denyHosts: [] });
  expect(describeConfig(config)).toContain("allow-hosts=10.0.0.0/8:5432,db.internal,[::1]:5432 deny-hosts=1.2.3.4,db.bad.example");
});

test("an entry that is no host, address or CIDR is a usage error naming the flag", () => {
  expect(() => serveConfig(["--deny-hosts", "10.0.0.0/40"], {})).toThrow(UsageError);
  expect(() => serveConfig([], { HELIOS_ALLOW_HOSTS: "127.0.0.1:http" })).toThrow(/^--allow-hosts: "127\.0\.0\.1:http" is not a host/);
});
