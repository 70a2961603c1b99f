// The OAuth 2.0 authorization server (spec §5.3), plain HTTP beside the RPC
// routes: POST /oauth/token (RFC 6749: client_credentials,
// authorization_code with PKCE S256, refresh_token), POST /oauth/revoke
// (RFC 7009), GET|POST /oauth/authorize (the login and consent pages), and
// GET /.well-known/oauth-authorization-server (RFC 8414). Clients
// authenticate with HTTP Basic or client_secret_post; public clients by
// client_id alone (and PKCE). Every token issued and every credential refused
// is audited.
import { createHmac } from "node:crypto";
import { ConnectError } from "@connectrpc/connect";
import type pg from "pg";
import { OAuthClientController } from "../controller/oauth-clients";
import type { AuditEvent } from "../store/audit-events";
import { OAuthClientStore, UserStore } from "../store/oauth-clients";
import { OAuthGrantStore } from "../store/oauth-grants";
import { auditEvent, type AuditSink } from "./audit";
import type { Authenticate } from "./auth";
import { apiError, asApiError, envelope } from "./errors";
import type { SigningKey } from "./key-ring";
import { handleAuthorize } from "./oauth-authorize";
import { errorPage, sendHtml } from "./oauth-pages";
import { originOf, readForm, requestId, sendEnvelope, sendJson, sendOAuthError, type Request, type Response } from "./oauth-http";
import { copyRateLimitHeaders, type Limits } from "./rate-limit";
import { grantOfJti, OAuthError, OAuthTokens } from "./oauth-tokens";

const ROUTES: Record<string, string[]> = {
  "/oauth/token": ["POST"],
  "/oauth/revoke": ["POST"],
  "/oauth/authorize": ["GET", "HEAD", "POST"],
  "/.well-known/oauth-authorization-server": ["GET", "HEAD"],
};

// A path of plain segments and no query: its own pathname (as rest.ts's).
const PLAIN_PATH = /^(?:\/[\w~-][\w.~-]*)+$/;

export interface OAuthOptions {
  db: pg.Pool;
  /** The master key: keys the tickets between the login and consent pages. */
  master: Buffer;
  /** The control plane's current signing key (SigningKeyRing.currentKey). */
  signingKey: () => Promise<SigningKey>;
  /** The credentials check of every call: verifies an access token handed to /oauth/revoke. */
  authenticate: Authenticate;
  audit: AuditSink;
  addressOf: (requestId: string | null) => string;
  rolePermissions: Record<string, string[]>;
  /**
   * Takes a token of a client address's rate-limit bucket (spec §7; absent:
   * no limits): its headers, or a 429 ConnectError carrying them.
   */
  limitAddress?: (address: string) => Promise<Limits>;
  tls: boolean;
  log: (message: string) => void;
}

export interface OAuthServer {
  /** Serves the OAuth routes; false for every other path. */
  handle(req: Request, res: Response): boolean;
  /** The rules of OAuthClientService and UserService. */
  controller: OAuthClientController;
}

export function oauthServer(o: OAuthOptions): OAuthServer {
  const clients = new OAuthClientStore(o.db);
  const users = new UserStore(o.db);
  const grants = new OAuthGrantStore(o.db);
  const tokens = new OAuthTokens({ clients, users, grants, signingKey: o.signingKey, rolePermissions: o.rolePermissions });
  const ticketKey = createHmac("sha256", o.master).update("heliosdb oauth ticket v1").digest();
  const audit = (req: Request, rpc: string, event: Partial<AuditEvent> & { outcome: string }) => {
    const id = requestId(req);
    void o.audit.record(auditEvent({ ...event, rpc, requestId: id, clientAddress: o.addressOf(id) }));
  };

  // `who` names the client a request claims to be, for the audit of a refusal too.
  const token = async (req: Request, res: Response, who: { principal: string }) => {
    const form = await readForm(req);
    const client = await authenticateClient(req, form, tokens, (id) => (who.principal = id));
    const grantType = form.get("grant_type") ?? "";
    const issued =
      grantType === "client_credentials"
        ? await tokens.clientCredentials(client, form.get("scope"))
        : grantType === "authorization_code"
          ? await tokens.exchangeCode(client, form.get("code") ?? "", form.get("redirect_uri"), form.get("code_verifier"))
          : grantType === "refresh_token"
            ? await tokens.refresh(client, form.get("refresh_token") ?? "", form.get("scope"))
            : undefined;
    if (!issued) throw new OAuthError(grantType ? "unsupported_grant_type" : "invalid_request", grantType ? `grant_type ${grantType} is not supported` : "grant_type is required");
    audit(req, "OAuth.Token", { outcome: "OK", message: `token issued (${grantType})${issued.grant.userId ? ` for user ${issued.grant.userId}` : ""}`, principal: who.principal, credentialType: "oauth_client", credentialId: client.id, tenantId: client.tenantId, resource: issued.grant.id });
    sendJson(res, 200, issued.response, { "X-Request-Id": requestId(req) });
  };

  // RFC 7009: the answer is 200 whether or not the token was known (nothing to learn from it).
  const revoke = async (req: Request, res: Response, who: { principal: string }) => {
    const form = await readForm(req);
    const client = await authenticateClient(req, form, tokens, (id) => (who.principal = id));
    const text = form.get("token");
    if (!text) throw new OAuthError("invalid_request", "token is required");
    let grantId: string | undefined;
    if (text.startsWith("hdbrt_")) grantId = (await grants.grantOfRefreshToken(text))?.id;
    else grantId = grantOfJti((await o.authenticate(new Headers({ authorization: `Bearer ${text}` }), "OAuth.Revoke").catch(() => undefined))?.credential?.id);
    const grant = grantId ? await grants.grant(grantId) : undefined;
    // Only the client a token was issued to may revoke it.
    if (grant && grant.clientId === client.id && (await grants.revoke(grant.id, "revoked by the client"))) {
      audit(req, "OAuth.Revoke", { outcome: "OK", message: "grant revoked", principal: `client:${client.id}`, credentialType: "oauth_client", credentialId: client.id, tenantId: client.tenantId, resource: grant.id });
    }
    sendJson(res, 200, {}, { "X-Request-Id": requestId(req) });
  };

  const metadata = (req: Request, res: Response) => {
    const origin = originOf(req, o.tls);
    sendJson(res, 200, {
      issuer: origin,
      authorization_endpoint: `${origin}/oauth/authorize`,
      token_endpoint: `${origin}/oauth/token`,
      revocation_endpoint: `${origin}/oauth/revoke`,
      jwks_uri: `${origin}/.well-known/jwks.json`,
      response_types_supported: ["code"],
      grant_types_supported: ["authorization_code", "client_credentials", "refresh_token"],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      scopes_supported: [...new Set(Object.values(o.rolePermissions).flat())].filter((p) => p !== "*").sort(),
      service_documentation: `${origin}/docs`,
    }, { "Cache-Control": "public, max-age=300" });
  };

  return {
    controller: new OAuthClientController(clients, users, o.rolePermissions),
    handle(req, res) {
      // Every API call passes here first: a plain path that is none of ours is let go without the URL parser.
      if (PLAIN_PATH.test(req.url ?? "/") && !Object.hasOwn(ROUTES, req.url!)) return false;
      const path = new URL(req.url ?? "/", "http://localhost").pathname;
      const methods = ROUTES[path];
      if (!methods) return false;
      const id = requestId(req);
      const who = { principal: "" };
      if (!methods.includes(req.method ?? "")) {
        req.resume();
        sendEnvelope(res, apiError("METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${path}`, { allow: methods }), id, { Allow: methods.join(", ") });
        return true;
      }
      const serve = () =>
        path === "/oauth/token"
          ? token(req, res, who)
          : path === "/oauth/revoke"
            ? revoke(req, res, who)
            : path === "/oauth/authorize"
              ? handleAuthorize(req, res, { tokens, users, ticketKey, tls: o.tls, audit: (r, e) => audit(r, "OAuth.Authorize", e) })
              : Promise.resolve(metadata(req, res));
      // Every POST checks a secret (a client's, a user's password): each counts against the
      // client's address before anything is read, so guessing is bounded per address (spec §7).
      const limited = async () => {
        for (const [name, value] of await o.limitAddress!(o.addressOf(id))) res.setHeader(name, value);
        return serve();
      };
      const answer = req.method === "POST" && o.limitAddress ? limited() : serve();
      answer.catch((e: unknown) => {
        if (res.headersSent) return void res.destroy();
        if (e instanceof ConnectError) {
          // A refusal of the rate limit (or its store down): the §6 envelope, or a page for the login form, with its headers.
          copyRateLimitHeaders(e.metadata, res);
          req.resume();
          if (path === "/oauth/authorize") return sendHtml(res, envelope(asApiError(e), id).status, errorPage(e.rawMessage));
          return sendEnvelope(res, asApiError(e), id);
        }
        if (e instanceof OAuthError && path === "/oauth/authorize") return sendHtml(res, 400, errorPage(e.description));
        if (e instanceof OAuthError) {
          audit(req, path === "/oauth/token" ? "OAuth.Token" : "OAuth.Revoke", { outcome: e.status === 401 || e.error === "invalid_grant" ? "UNAUTHORIZED" : "INVALID_REQUEST", message: `${e.error}: ${e.description}`, principal: who.principal, credentialType: "oauth_client" });
          return sendOAuthError(res, e, id);
        }
        o.log(`internal error (request ${id}): ${(e as Error)?.stack ?? String(e)}`);
        sendEnvelope(res, asApiError(e), id);
      });
      return true;
    },
  };
}

/**
 * The client of a token or revocation request: HTTP Basic (RFC 6749 §2.3.1:
 * each part form-encoded), client_secret_post, or client_id alone for a
 * public client; one method per request.
 */
async function authenticateClient(req: Request, form: Map<string, string>, tokens: OAuthTokens, named: (clientId: string) => void): Promise<Awaited<ReturnType<OAuthTokens["client"]>>> {
  const header = String(req.headers.authorization ?? "");
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)?.[1];
  if (header && !basic) throw new OAuthError("invalid_client", "the Authorization header must be Basic <client_id:client_secret>", 401);
  if (basic) {
    if (form.has("client_secret")) throw new OAuthError("invalid_request", "send the client's credentials one way: HTTP Basic or client_secret_post");
    const decoded = Buffer.from(basic, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new OAuthError("invalid_client", "client authentication failed", 401);
    let id: string;
    let secret: string;
    try {
      [id, secret] = [decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " ")), decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "))];
    } catch {
      throw new OAuthError("invalid_client", "client authentication failed", 401);
    }
    if (form.has("client_id") && form.get("client_id") !== id) throw new OAuthError("invalid_request", "client_id differs from the HTTP Basic client");
    named(`client:${id.slice(0, 64)}`);
    return tokens.client(id, secret);
  }
  const id = form.get("client_id");
  if (!id) throw new OAuthError("invalid_client", "client authentication is required: HTTP Basic, client_secret_post, or client_id for a public client", 401);
  named(`client:${id.slice(0, 64)}`);
  return tokens.client(id, form.get("client_secret"));
}
