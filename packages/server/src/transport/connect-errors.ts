// Connect refuses some requests before its handler runs the interceptors: a
// body that does not parse, a broken envelope, a content type or method it
// does not serve, a body over readMaxBytes. Those errors carry no §6 detail
// and no request id, and a parser's own words ("parse binary: premature
// EOF", a 500 for garbage the client sent). Here every error answer Connect
// writes gets the §6 ApiError with the request id, in the protocol's own
// form: the Connect JSON error (unary), the end-stream message (Connect
// streams), the trailers (gRPC) or the trailer message (gRPC-web). Errors
// that already carry the detail (everything from the interceptors) pass as
// they are.
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { pipe, transformJoinEnvelopes, transformSplitEnvelope, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, endStreamFlag, errorFromJson, errorToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { apiError, apiErrorOf, asApiError, envelope } from "./errors";
import { withRequestId } from "./interceptors";

export interface ErrorContext {
  req: { headers: Record<string, string | string[] | undefined>; method?: string | undefined };
  requestId: string;
  method: DescMethod;
  log: (cause: unknown, requestId: string) => void;
}

/** `uRes` with every error answer carrying the §6 ApiError and the request id. */
export function apiErrorsIn(uRes: UniversalServerResponse, ctx: ErrorContext): UniversalServerResponse {
  const header = uRes.header ?? new Headers();
  header.set("x-request-id", ctx.requestId);
  const type = String(ctx.req.headers["content-type"] ?? "");
  // Connect's bodiless refusals (415 content type, 405 method): the protocol is unknown or unusable, so the §6 envelope.
  if (!uRes.body && uRes.status !== 200) return refusal(uRes.status, ctx);
  // A compressed answer is left alone: errors Connect writes itself are small, and never compressed.
  if (header.has("content-encoding") || header.has("connect-content-encoding")) return { ...uRes, header };
  if (/^application\/grpc-web/i.test(type)) return { ...uRes, header, body: envelopes(uRes.body!, trailerFlag, (data) => grpcWebTrailer(data, ctx)) };
  if (/^application\/grpc/i.test(type)) return { ...uRes, header, body: thenFixTrailer(uRes.body!, uRes.trailer, ctx) };
  if (/^application\/connect\+/i.test(type)) return { ...uRes, header, body: envelopes(uRes.body!, endStreamFlag, (data) => endStream(data, ctx)) };
  if (uRes.status === 200) return { ...uRes, header };
  const out: UniversalServerResponse = { ...uRes, header };
  out.body = unaryError(uRes.body!, ctx, out);
  return out;
}

/** The §6 error for an error Connect made, in our words (errors.ts `asApiError`), with the request id; errors with the detail as they are. */
export function asOurs(error: ConnectError, ctx: ErrorContext): ConnectError {
  if (apiErrorOf(error)) return error;
  return withRequestId(asApiError(error, (e) => ctx.log(e, ctx.requestId), ctx.method.input.typeName), ctx.requestId);
}

function refusal(status: number, ctx: ErrorContext): UniversalServerResponse {
  const type = String(ctx.req.headers["content-type"] ?? "");
  const error =
    status === 415
      ? apiError("UNSUPPORTED_MEDIA_TYPE", `${ctx.method.parent.name}.${ctx.method.name} takes Connect, gRPC or gRPC-web requests, not "${type}"`, { content_type: type })
      : status === 405
        ? apiError("METHOD_NOT_ALLOWED", `${ctx.req.method} is not allowed on this RPC: POST (or GET for Connect's side-effect-free calls)`, { allow: ["POST"] })
        : asApiError(new ConnectError(`HTTP ${status}`, Code.Unknown), (e) => ctx.log(e, ctx.requestId));
  const out = envelope(error, ctx.requestId);
  const body = new TextEncoder().encode(JSON.stringify(out.body));
  const header = new Headers({ "content-type": "application/json; charset=utf-8", "content-length": String(body.length), "x-request-id": ctx.requestId });
  if (status === 405) header.set("allow", "POST");
  return { status: out.status, header, body: (async function* () { yield body; })() };
}

// The Connect unary error body: JSON {code, message, details}. Status and
// headers are written after the first chunk is read
// (universalResponseToNodeResponse): they still change here.
async function* unaryError(body: AsyncIterable<Uint8Array>, ctx: ErrorContext, res: UniversalServerResponse): AsyncGenerator<Uint8Array> {
  const bytes = await all(body);
  const error = errorFromJson(JSON.parse(new TextDecoder().decode(bytes)), undefined, new ConnectError("unparsable error", Code.Internal));
  const ours = asOurs(error, ctx);
  if (ours === error) return yield bytes;
  const out = errorToJsonBytes(ours, {});
  res.status = codeToHttpStatus(ours.code);
  res.header!.set("content-length", String(out.length));
  ours.metadata.forEach((value, name) => res.header!.set(name, value));
  yield out;
}

// The end-stream message of a Connect stream: {error?, metadata?}.
function endStream(data: Uint8Array, ctx: ErrorContext): Uint8Array {
  const json = JSON.parse(new TextDecoder().decode(data)) as { error?: unknown; metadata?: unknown };
  if (!json.error) return data;
  const error = errorFromJson(json.error as never, undefined, new ConnectError("unparsable error", Code.Internal));
  const ours = asOurs(error, ctx);
  if (ours === error) return data;
  return new TextEncoder().encode(JSON.stringify({ ...json, error: errorToJson(ours, {}) }));
}

// The gRPC-web trailer message: "grpc-status: 13\r\ngrpc-message: …\r\n".
function grpcWebTrailer(data: Uint8Array, ctx: ErrorContext): Uint8Array {
  const trailer = trailerParse(data);
  const error = findTrailerError(trailer);
  if (!error) return data;
  const ours = asOurs(error, ctx);
  if (ours === error) return data;
  return trailerSerialize(setTrailerStatus(new Headers(), ours));
}

// gRPC: the trailer is complete once the body is (Connect sets the status as the stream ends).
async function* thenFixTrailer(body: AsyncIterable<Uint8Array>, trailer: Headers | undefined, ctx: ErrorContext): AsyncGenerator<Uint8Array> {
  yield* body;
  const error = trailer && findTrailerError(trailer);
  if (!trailer || !error) return;
  const ours = asOurs(error, ctx);
  if (ours === error) return;
  for (const name of ["grpc-status", "grpc-message", "grpc-status-details-bin"]) trailer.delete(name);
  setTrailerStatus(trailer, ours);
}

// Envelopes passed through; the data of the one with `flag` (uncompressed) replaced by `fix`.
function envelopes(body: AsyncIterable<Uint8Array>, flag: number, fix: (data: Uint8Array) => Uint8Array): AsyncIterable<Uint8Array> {
  return pipe(
    body,
    transformSplitEnvelope(0xffffffff),
    async function* (iterable) {
      for await (const env of iterable) {
        yield (env.flags & flag) === flag && (env.flags & 1) === 0 ? { flags: env.flags, data: fix(env.data) } : env;
      }
    },
    transformJoinEnvelopes(),
  );
}

async function all(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}
