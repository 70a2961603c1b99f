// The client-credentials token provider against a mock token endpoint (msw):
// HTTP Basic with the client's id and secret, one request for calls that
// need a token at once, the token kept until shortly before it expires, a
// refusal as an UnauthorizedError saying what the endpoint answered.
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { clientCredentials, UnauthorizedError } from "../src/index";

const TOKEN_URL = "http://auth.test/oauth/token";
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

test("asks once, keeps the token, and asks again when less than a tenth of its life is left", async () => {
  const asked: { authorization: string | null; body: string }[] = [];
  server.use(
    http.post(TOKEN_URL, async ({ request }) => {
      asked.push({ authorization: request.headers.get("authorization"), body: await request.text() });
      return HttpResponse.json({ access_token: `token-${asked.length}`, token_type: "Bearer", expires_in: 600 });
    }),
  );
  let clock = 1_000_000;
  const token = clientCredentials({ clientId: "billing", clientSecret: "s3cret:with/odd chars", tokenUrl: TOKEN_URL, scope: "replication:read" }, undefined, () => clock);
  // Three calls at once: one request.
  expect(await Promise.all([token(), token(), token()])).toEqual(["token-1", "token-1", "token-1"]);
  expect(asked).toHaveLength(1);
  expect(asked[0]!.authorization).toBe(`Basic ${btoa(`billing:${encodeURIComponent("s3cret:with/odd chars")}`)}`);
  expect(new URLSearchParams(asked[0]!.body).get("grant_type")).toBe("client_credentials");
  expect(new URLSearchParams(asked[0]!.body).get("scope")).toBe("replication:read");
  // 600 s of life: kept until 60 s before the end.
  clock += 539_000;
  expect(await token()).toBe("token-1");
  clock += 2_000;
  expect(await token()).toBe("token-2");
  expect(asked).toHaveLength(2);
});

test("a refusal is an UnauthorizedError with the endpoint's error; the next call asks again", async () => {
  let refuse = true;
  server.use(http.post(TOKEN_URL, () => (refuse ? HttpResponse.json({ error: "invalid_client", error_description: "unknown client" }, { status: 401 }) : HttpResponse.json({ access_token: "ok", expires_in: 60 }))));
  const token = clientCredentials({ clientId: "x", clientSecret: "y", tokenUrl: TOKEN_URL });
  const error = await token().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UnauthorizedError);
  expect((error as UnauthorizedError).message).toContain("invalid_client: unknown client");
  refuse = false;
  expect(await token()).toBe("ok");
});
