// GET and POST /oauth/authorize (RFC 6749 §4.1.1, PKCE RFC 7636 with S256
// only): the login page, then the consent page, then a redirect to the
// client with a single-use code. Between the two pages the server keeps
// nothing: the consent form carries a ticket, HMAC-signed, that names the
// user, binds the exact authorization request and the CSRF token, and lives
// five minutes. Errors before the client and its redirect URI are known are
// shown on a page; later ones go back to the client (§4.1.2.1).
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { AuditEvent } from "../store/audit-events";
import type { OAuthClientRow, UserStore } from "../store/oauth-clients";
import { verifySecret } from "../controller/password-hash";
import { params, readForm, type Request, type Response } from "./oauth-http";
import { consentPage, errorPage, loginPage, sendHtml } from "./oauth-pages";
import { OAuthError, type OAuthTokens } from "./oauth-tokens";

const REQUEST_PARAMS = ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"];
const CSRF_COOKIE = "heliosdb_oauth_csrf";
const TICKET_MS = 5 * 60_000;

export interface AuthorizeOptions {
  tokens: OAuthTokens;
  users: UserStore;
  /** Signs the tickets between the login and the consent page. */
  ticketKey: Buffer;
  tls: boolean;
  audit: (req: Request, event: Partial<AuditEvent> & { outcome: string }) => void;
}

interface Authorization {
  client: OAuthClientRow;
  /** Where the answer goes: the request's redirect_uri, or the client's only one. */
  redirectUri: string;
  /** The request's own, as the code is bound to it ("" when it named none). */
  requestedUri: string;
  fields: Record<string, string>;
}

export async function handleAuthorize(req: Request, res: Response, o: AuthorizeOptions): Promise<void> {
  if (req.method === "GET" || req.method === "HEAD") {
    const query = params(new URL(req.url ?? "/", "http://localhost").searchParams);
    const auth = await authorization(query, o, res);
    if (!auth) return;
    const csrf = randomBytes(24).toString("base64url");
    const name = auth.client.name;
    return sendHtml(res, 200, loginPage(name, { ...auth.fields, csrf }, false), { "Set-Cookie": cookie(csrf, o.tls) });
  }
  const form = await readForm(req);
  const auth = await authorization(form, o, res);
  if (!auth) return;
  const csrf = form.get("csrf") ?? "";
  if (!same(csrf, cookies(req)[CSRF_COOKIE] ?? "")) return sendHtml(res, 403, errorPage("This form has expired or did not come from this server. Start signing in again from the application."));
  const fields = { ...auth.fields, csrf };
  if (form.get("step") === "login") {
    const username = form.get("username") ?? "";
    const user = username.length <= 200 ? await o.users.byUsername(username) : undefined;
    // The same work and the same answer whether the user or the password is wrong.
    if (!(await verifySecret(form.get("password") ?? "", user?.passwordHash)) || !user) {
      o.audit(req, { outcome: "UNAUTHORIZED", message: "sign-in refused: wrong username or password", principal: `user:${username.slice(0, 200)}`, credentialType: "password", resource: auth.client.id });
      return sendHtml(res, 401, loginPage(auth.client.name, fields, true));
    }
    const holder = o.tokens.userHolder(user);
    let scope: string;
    try {
      scope = o.tokens.scope(auth.fields.scope, holder.held);
    } catch (e) {
      return redirect(res, auth, { error: "invalid_scope", error_description: (e as OAuthError).description });
    }
    const ticket = sign(o.ticketKey, { u: user.id, e: Date.now() + TICKET_MS, r: digestOf(auth.fields), c: csrf });
    return sendHtml(res, 200, consentPage(auth.client.name, user.username, scope ? scope.split(" ") : holder.held, { ...fields, ticket }));
  }
  if (form.get("step") !== "consent") return sendHtml(res, 400, errorPage("The form is not complete. Start signing in again from the application."));
  const ticket = verify(o.ticketKey, form.get("ticket") ?? "");
  if (!ticket || ticket.e <= Date.now() || ticket.r !== digestOf(auth.fields) || ticket.c !== csrf) {
    return sendHtml(res, 400, errorPage("This sign-in has expired. Start again from the application."));
  }
  const user = await o.users.get(ticket.u);
  if (!user) return redirect(res, auth, { error: "access_denied", error_description: "the user no longer exists" });
  if (form.get("decision") !== "allow") {
    o.audit(req, { outcome: "FORBIDDEN", message: "consent denied", principal: `user:${user.username}`, credentialType: "password", tenantId: user.tenantId, resource: auth.client.id });
    return redirect(res, auth, { error: "access_denied", error_description: "the user denied access" });
  }
  let scope: string;
  try {
    scope = o.tokens.scope(auth.fields.scope, o.tokens.userHolder(user).held);
  } catch (e) {
    return redirect(res, auth, { error: "invalid_scope", error_description: (e as OAuthError).description });
  }
  const code = await o.tokens.authorizationCode(auth.client, user, auth.requestedUri, auth.fields.code_challenge!, scope);
  o.audit(req, { outcome: "OK", message: "authorization code issued", principal: `user:${user.username}`, credentialType: "password", tenantId: user.tenantId, resource: auth.client.id });
  return redirect(res, auth, { code });
}

// The request checked; undefined when an answer (a page or a redirect) was sent.
async function authorization(p: Map<string, string>, o: AuthorizeOptions, res: Response): Promise<Authorization | undefined> {
  const clientId = p.get("client_id") ?? "";
  // A confidential client may use the flow too: it authenticates at the token endpoint.
  const client = await o.tokens.clientRow(clientId);
  if (!client) return void sendHtml(res, 400, errorPage("Unknown application (client_id)."));
  const requestedUri = p.get("redirect_uri") ?? "";
  const redirectUri = requestedUri || (client.redirectUris.length === 1 ? client.redirectUris[0]! : "");
  if (!redirectUri || !client.redirectUris.includes(redirectUri)) return void sendHtml(res, 400, errorPage("The redirect URI is not registered for this application."));
  const fields = Object.fromEntries(REQUEST_PARAMS.filter((n) => p.has(n)).map((n) => [n, p.get(n)!]));
  const auth: Authorization = { client, redirectUri, requestedUri, fields };
  const fail = (error: string, description: string) => void redirect(res, auth, { error, error_description: description });
  if (p.get("response_type") !== "code") return fail("unsupported_response_type", "response_type must be code");
  if (!client.grantTypes.includes("authorization_code")) return fail("unauthorized_client", "this client may not use authorization_code");
  if (p.get("code_challenge_method") !== "S256") return fail("invalid_request", "PKCE is required: code_challenge_method=S256 (plain is not accepted)");
  if (!/^[A-Za-z0-9_-]{43}$/.test(p.get("code_challenge") ?? "")) return fail("invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)");
  if ((p.get("state") ?? "").length > 1024 || (p.get("scope") ?? "").length > 4096) return fail("invalid_request", "state or scope is too long");
  return auth;
}

function redirect(res: Response, auth: Authorization, answer: Record<string, string>): void {
  const url = new URL(auth.redirectUri);
  for (const [name, value] of Object.entries(answer)) url.searchParams.set(name, value);
  if (auth.fields.state !== undefined) url.searchParams.set("state", auth.fields.state);
  res.writeHead(303, { Location: url.toString(), "Cache-Control": "no-store", "Content-Length": 0 });
  res.end();
}

function cookie(value: string, tls: boolean): string {
  return `${CSRF_COOKIE}=${value}; Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=600${tls ? "; Secure" : ""}`;
}

function cookies(req: Request): Record<string, string> {
  const header = String(req.headers.cookie ?? "");
  return Object.fromEntries(header.split(";").map((c) => c.trim().split("=")).filter((kv) => kv.length === 2) as [string, string][]);
}

function same(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length > 0 && x.length === y.length && timingSafeEqual(x, y);
}

function digestOf(fields: Record<string, string>): string {
  return createHash("sha256").update(JSON.stringify(REQUEST_PARAMS.map((n) => fields[n] ?? null))).digest("base64url");
}

interface Ticket {
  u: string;
  e: number;
  r: string;
  c: string;
}

function sign(key: Buffer, ticket: Ticket): string {
  const body = Buffer.from(JSON.stringify(ticket)).toString("base64url");
  return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
}

function verify(key: Buffer, text: string): Ticket | undefined {
  const [body, mac] = text.split(".");
  if (!body || !mac || !same(mac, createHmac("sha256", key).update(body).digest("base64url"))) return undefined;
  try {
    return JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Ticket;
  } catch {
    return undefined;
  }
}
