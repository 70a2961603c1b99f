// The server's configuration: the destination policy and the trusted
// identity providers, flags over the environment; an entry it cannot use is
// a usage error naming why, at start rather than at first use.
import { describe, expect, test } from "vitest";
import { describeConfig, serveConfig, trustedIssuer, UsageError } from "./config";

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

describe("--trusted-issuer", () => {
  test("fields, with the defaults of the server's own tokens' claims", () => {
    expect(trustedIssuer("issuer=https://idp.example,jwks=https://idp.example/keys,tenant-claim=org,roles-claim=realm.roles,permissions-claim=scope,unbound=allow")).toEqual({
      issuer: "https://idp.example",
      jwksUrl: "https://idp.example/keys",
      audience: "heliosdb-api",
      tenantClaim: "org",
      rolesClaim: "realm.roles",
      permissionsClaim: "scope",
      allowUnbound: true,
    });
    expect(trustedIssuer("issuer=a,jwks=http://127.0.0.1:9/k,audience=x")).toMatchObject({ audience: "x", tenantClaim: "tenant_id", allowUnbound: false });
  });

  test("flags, else HELIOS_TRUSTED_ISSUERS (;-separated), else none", () => {
    const one = "issuer=a,jwks=https://a/k";
    const two = "issuer=b,jwks=https://b/k";
    expect(serveConfig([], {}).issuers).toEqual([]);
    expect(serveConfig([], { HELIOS_TRUSTED_ISSUERS: `${one};${two}` }).issuers.map((i) => i.issuer)).toEqual(["a", "b"]);
    expect(serveConfig(["--trusted-issuer", two], { HELIOS_TRUSTED_ISSUERS: one }).issuers.map((i) => i.issuer)).toEqual(["b"]);
  });

  test("a JWKS over plain http to another machine, a missing field or an unknown one is refused", () => {
    const cases: [string, RegExp][] = [
      ["issuer=a,jwks=http://idp.example/keys", /https URL/],
      ["issuer=a", /issuer= and jwks= are required/],
      ["issuer=a,jwks=https://a/k,tenant=org", /unknown field "tenant"/],
      ["issuer=a,jwks=not a url", /not a URL/],
      ["issuer=a,jwks=https://a/k,unbound=yes", /allow or refuse/],
    ];
    for (const [text, message] of cases) {
      expect(() => trustedIssuer(text), text).toThrow(UsageError);
      expect(() => trustedIssuer(text), text).toThrow(message);
    }
  });
});

describe("rate limits", () => {
  test("on by default with the Standard tier; tiers resized and principals' own buckets from flags over the environment", () => {
    expect(serveConfig([], {}).rateLimits).toEqual({ tiers: {}, principals: {}, defaultTier: "Standard" });
    const env = { HELIOS_RATE_LIMIT: "Free=30/5;principal:acme=100000/5000", HELIOS_DEFAULT_TIER: "Free" };
    expect(serveConfig([], env).rateLimits).toEqual({ tiers: { Free: { perMinute: 30, burst: 5 } }, principals: { acme: { perMinute: 100000, burst: 5000 } }, defaultTier: "Free" });
    const config = serveConfig(["--rate-limit", "Enterprise=120000/4000", "--default-tier", "Premium"], env);
    expect(config.rateLimits).toEqual({ tiers: { Enterprise: { perMinute: 120000, burst: 4000 } }, principals: {}, defaultTier: "Premium" });
    expect(describeConfig(config)).toContain("rate-limits=on(default-tier Premium, Enterprise 120000/min burst 4000)");
    const off = serveConfig(["--rate-limits", "off"], {});
    expect(off.rateLimits).toBeUndefined();
    expect(describeConfig(off)).toContain("rate-limits=off");
  });

  test("a tier that does not exist, a zero rate or burst, or a malformed entry is a usage error", () => {
    const cases: [string[], RegExp][] = [
      [["--rate-limits", "yes"], /on or off/],
      [["--default-tier", "Gold"], /--default-tier: one of Free, Standard, Premium, Enterprise/],
      [["--rate-limit", "Gold=1/1"], /Gold is neither a tier/],
      [["--rate-limit", "Free=0/1"], /a rate above 0/],
      [["--rate-limit", "Free=10/0"], /a burst of 1 or more/],
      [["--rate-limit", "Free"], /NAME=PER_MINUTE\/BURST/],
      [["--rate-limit", "principal:=1/1"], /neither a tier/],
    ];
    for (const [args, message] of cases) expect(() => serveConfig(args, {}), args.join(" ")).toThrow(message);
  });
});

describe("event and audit retention", () => {
  test("--event-retention and --audit-retention over the environment, over the defaults (30 d and 90 d, 1,000,000 rows each)", () => {
    expect(serveConfig([], {})).toMatchObject({ eventRetention: { maxAgeDays: 30, maxRows: 1_000_000 }, auditRetention: { maxAgeDays: 90, maxRows: 1_000_000 } });
    const env = { HELIOS_EVENT_RETENTION: "7d,5000", HELIOS_AUDIT_RETENTION: "365d,20000000" };
    expect(serveConfig([], env)).toMatchObject({ eventRetention: { maxAgeDays: 7, maxRows: 5000 }, auditRetention: { maxAgeDays: 365, maxRows: 20_000_000 } });
    const config = serveConfig(["--event-retention", "2d, 100"], env);
    expect(config.eventRetention).toEqual({ maxAgeDays: 2, maxRows: 100 });
    expect(describeConfig(config)).toContain("event-retention=2d,100 audit-retention=365d,20000000");
  });

  test("what the server cannot use is a usage error naming the flag and the form", () => {
    for (const bad of ["30", "30d", "0d,10", "30d,0", "1w,10", "30d,1e6"]) {
      expect(() => serveConfig(["--event-retention", bad], {})).toThrow(/^--event-retention: DAYSd,ROWS with both at least 1 \(e\.g\. 30d,1000000\)/);
    }
    expect(() => serveConfig([], { HELIOS_AUDIT_RETENTION: "forever" })).toThrow(/^--audit-retention: DAYSd,ROWS/);
  });
});

describe("metrics", () => {
  test("--metrics-interval and --metrics-retention over the environment, over the defaults (10 s; raw 48 h, 1m 14 d, 5m 35 d, 1h 400 d, 1d 1830 d)", () => {
    const DAY = 86_400;
    expect(serveConfig([], {}).metrics).toEqual({ sampleIntervalMs: 10_000, retention: { raw: 2 * DAY, "1m": 14 * DAY, "5m": 35 * DAY, "1h": 400 * DAY, "1d": 1830 * DAY } });
    const env = { HELIOS_METRICS_INTERVAL: "30", HELIOS_METRICS_RETENTION: "raw=72h" };
    expect(serveConfig([], env).metrics).toMatchObject({ sampleIntervalMs: 30_000, retention: { raw: 3 * DAY, "1m": 14 * DAY } });
    const config = serveConfig(["--metrics-interval", "0.5", "--metrics-retention", "1m=7d, 1d=3650d"], env);
    expect(config.metrics).toEqual({ sampleIntervalMs: 500, retention: { raw: 2 * DAY, "1m": 7 * DAY, "5m": 35 * DAY, "1h": 400 * DAY, "1d": 3650 * DAY } });
    expect(describeConfig(config)).toContain("metrics-interval=0.5s metrics-retention=raw=2d,1m=7d,5m=35d,1h=400d,1d=3650d");
  });

  test("what the server cannot use is a usage error naming the flag", () => {
    expect(() => serveConfig(["--metrics-interval", "0"], {})).toThrow(/^--metrics-interval: /);
    expect(() => serveConfig(["--metrics-interval", "soon"], {})).toThrow(UsageError);
    expect(() => serveConfig(["--metrics-retention", "2m=1d"], {})).toThrow(/^--metrics-retention: NAME=DURATION/);
    expect(() => serveConfig(["--metrics-retention", "raw=14"], {})).toThrow(UsageError);
    // Raw samples feed the 1d buckets: they must outlive one.
    expect(() => serveConfig(["--metrics-retention", "raw=12h"], {})).toThrow(/^--metrics-retention: raw metric samples must be kept longer than the widest bucket/);
  });
});
