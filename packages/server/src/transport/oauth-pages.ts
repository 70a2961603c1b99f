// The login, consent and error pages of the authorization-code flow: plain
// HTML with inline CSS, no script and no external asset (the CSP forbids
// both), every value escaped. The authorization request travels in hidden
// fields; the CSRF token in a hidden field and a SameSite=Strict cookie.
import type { Response } from "./oauth-http";
import { NO_STORE } from "./oauth-http";

const STYLE = `body{font:15px/1.4 system-ui,sans-serif;background:#f4f5f7;margin:0}
main{max-width:360px;margin:10vh auto;background:#fff;padding:24px 28px;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:20px;margin:0 0 16px}label{display:block;margin:12px 0 4px}input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px}
button{margin-top:16px;padding:8px 16px}.error{color:#b00020}ul{padding-left:20px}`;

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function hidden(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join("\n      ");
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${escapeHtml(title)} · HeliosDB</title>
    <style>${STYLE}</style>
  </head>
  <body>
    <main>
      <h1>${escapeHtml(title)}</h1>
      ${body}
    </main>
  </body>
</html>
`;
}

/** The sign-in form; `failed` says only that the username or password was wrong, never which. */
export function loginPage(clientName: string, fields: Record<string, string>, failed: boolean): string {
  return page(
    "Sign in",
    `<p>to continue to <strong>${escapeHtml(clientName || "an application")}</strong></p>
      ${failed ? `<p class="error" role="alert">The username or password is incorrect.</p>` : ""}
      <form method="post" action="/oauth/authorize">
      ${hidden({ ...fields, step: "login" })}
      <label for="username">Username</label>
      <input type="text" id="username" name="username" autocomplete="username" required>
      <label for="password">Password</label>
      <input type="password" id="password" name="password" autocomplete="current-password" required>
      <button type="submit" id="sign-in">Sign in</button>
      </form>`,
  );
}

/** The consent form: the client, the user and the permissions asked for. */
export function consentPage(clientName: string, username: string, permissions: string[], fields: Record<string, string>): string {
  const items = permissions.map((p) => `<li><code>${escapeHtml(p === "*" ? "every permission" : p)}</code></li>`).join("");
  return page(
    "Allow access?",
    `<p><strong>${escapeHtml(clientName || "An application")}</strong> asks to act as <strong>${escapeHtml(username)}</strong> with:</p>
      <ul id="scopes">${items}</ul>
      <form method="post" action="/oauth/authorize">
      ${hidden({ ...fields, step: "consent" })}
      <button type="submit" name="decision" value="allow" id="allow">Allow</button>
      <button type="submit" name="decision" value="deny" id="deny">Deny</button>
      </form>`,
  );
}

/** An error that cannot go back to the client (unknown client, unregistered redirect URI: RFC 6749 §4.1.2.1). */
export function errorPage(message: string): string {
  return page("Cannot sign in", `<p class="error" role="alert">${escapeHtml(message)}</p>`);
}

export function sendHtml(res: Response, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Length": Buffer.byteLength(html),
    // No script, no frame, nothing from elsewhere. No form-action: the consent
    // answer redirects to the client's origin, which form-action would block.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    ...NO_STORE,
    ...headers,
  });
  res.end(html);
}
