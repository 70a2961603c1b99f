// The transport's options: flags over the environment over the defaults,
// and what is printed of them.
import { expect, test } from "vitest";
import { describeConfig, serveConfig } from "./config";

test("defaults: 1 MiB bodies, 16 KiB headers, 10/30/60 s, no CORS origin, cleartext", () => {
  expect(serveConfig([], {}).transport).toEqual({
    maxBodyBytes: 1 << 20,
    maxHeaderBytes: 16 * 1024,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    idleTimeoutMs: 60_000,
    corsOrigins: [],
  });
});

test("flags win over the environment", () => {
  const env = { HELIOS_MAX_BODY_BYTES: "2048", HELIOS_CORS_ORIGINS: "https://a.example, https://b.example:8443", HELIOS_REQUEST_TIMEOUT: "5" };
  const config = serveConfig(["--max-body-bytes", "4096", "--tls-cert", "/etc/cert.pem", "--tls-key", "/etc/key.pem"], env);
  expect(config.transport).toMatchObject({
    maxBodyBytes: 4096,
    requestTimeoutMs: 5000,
    corsOrigins: ["https://a.example", "https://b.example:8443"],
    tlsCert: "/etc/cert.pem",
    tlsKey: "/etc/key.pem",
  });
  expect(describeConfig(config)).toContain("max-body-bytes=4096 max-header-bytes=16384 headers-timeout=10s request-timeout=5s idle-timeout=60s cors-origins=https://a.example,https://b.example:8443 tls=/etc/cert.pem (key /etc/key.pem)");
});
