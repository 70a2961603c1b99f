// OAuth 2.0 client credentials (spec §5.3, RFC 6749 §4.4) as a token
// provider for the client: a token is asked for at the first call, kept,
// and asked for again shortly before it expires (when less than a tenth of
// its life, at most a minute, is left), so a call never leaves with a token
// about to lapse. Calls that need a token while one is being asked for wait
// for that one. A refusal of the token endpoint is an UnauthorizedError that
// says what it answered; no answer, a ConnectionError (the call retries).
import { ConnectionError, UnauthorizedError } from "../core/errors";

export interface OAuthClientCredentials {
  clientId: string;
  clientSecret: string;
  /** The token endpoint: the server's `/oauth/token`. */
  tokenUrl: string;
  /** Space-separated permissions to ask for (default: all the client holds). */
  scope?: string;
}

interface Kept {
  token: string;
  /** When to ask again (ms since the epoch). */
  renewAt: number;
}

/** A function giving a valid access token, for the client's `token` option. */
export function clientCredentials(options: OAuthClientCredentials, fetchFn: typeof fetch = (...a) => fetch(...a), now: () => number = Date.now): () => Promise<string> {
  let kept: Kept | undefined;
  let asking: Promise<Kept> | undefined;
  const ask = async (): Promise<Kept> => {
    const body = new URLSearchParams({ grant_type: "client_credentials", ...(options.scope ? { scope: options.scope } : {}) });
    let response: Response;
    let text: string;
    try {
      response = await fetchFn(options.tokenUrl, {
        method: "POST",
        headers: { authorization: `Basic ${btoa(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`)}`, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: body.toString(),
      });
      text = await response.text();
    } catch (e) {
      throw new ConnectionError({ code: "CONNECTION_ERROR", message: `the token endpoint could not be reached: ${options.tokenUrl}: ${(e as Error)?.message ?? e}`, cause: e });
    }
    let answer: { access_token?: string; expires_in?: number; error?: string; error_description?: string } = {};
    try {
      answer = JSON.parse(text);
    } catch {
      // Not JSON: said below with the status.
    }
    if (!response.ok || !answer.access_token) {
      const why = answer.error ? `${answer.error}${answer.error_description ? `: ${answer.error_description}` : ""}` : `HTTP ${response.status}`;
      throw new UnauthorizedError({ code: "UNAUTHORIZED", status: 401, message: `the token endpoint refused the client credentials (${why})`, details: { oauth_error: answer.error ?? "", status: response.status } });
    }
    const lifeMs = (answer.expires_in ?? 3600) * 1000;
    return { token: answer.access_token, renewAt: now() + lifeMs - Math.min(60_000, lifeMs / 10) };
  };
  return async () => {
    if (kept && now() < kept.renewAt) return kept.token;
    asking ??= ask().finally(() => (asking = undefined));
    kept = await asking;
    return kept.token;
  };
}
