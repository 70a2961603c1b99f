// The server's configuration of trusted identity providers: flags, then the
// environment; a specification it cannot use is a usage error naming why.
import { describe, expect, test } from "vitest";
import { serveConfig, trustedIssuer, UsageError } from "./config";

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
