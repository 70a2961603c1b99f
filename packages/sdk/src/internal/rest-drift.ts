// The check that fails `tsc` when the SDK's REST transport and the OpenAPI
// document disagree. Both sides come from the contract, by different code:
// rest-types.ts is the JSON the transport sends and reads (toRestRequest,
// fromRest and the route table, by the REST mapping's helpers), openapi.ts is
// what openapi-typescript reads in packages/server/openapi/openapi.yaml. For
// every route each part (path, query, body, answer) must have the same keys
// and the same value types, deeply; a difference is an error that names it:
//   Type '"ReplicationService.CreateReplication body.config.qos_tier: \"Gold\" only
//   in the document"' does not satisfy the constraint 'never'.
// Nothing here runs; no entry point imports it; `tsc --noEmit` checks it.
import type { $Read, $Write, paths, Readable } from "./openapi";
import type { InputOnly, Int64Text, Routes } from "./rest-types";

type Verb = "get" | "put" | "post" | "delete" | "patch";

interface Route {
  path: string;
  verb: Verb;
  status: number;
  params: unknown;
  query: unknown;
  body: unknown;
  answer: unknown;
}

interface Operation {
  parameters: { path?: unknown; query?: unknown };
  requestBody?: unknown;
  responses: object;
}

/** Every difference, as a message; never when there is none. */
export type RestDrift = { [R in keyof Routes & string]: RouteDrift<R, Routes[R]> }[keyof Routes & string] | Unrouted;

type NoDrift<D extends never> = D;
export type Checked = NoDrift<RestDrift>;

type RouteDrift<R extends string, E extends Route> = E["path"] extends keyof paths
  ? [NonNullable<paths[E["path"]][E["verb"]]>] extends [never]
    ? `${R}: the document has no ${Uppercase<E["verb"]>} ${E["path"]}`
    : OperationDrift<R, E, NonNullable<paths[E["path"]][E["verb"]]> & Operation>
  : `${R}: the document has no path ${E["path"]}`;

type OperationDrift<R extends string, E extends Route, Op extends Operation> =
  | Diff<Sent<E["params"]>, Doc<NonNullable<Op["parameters"]["path"]>>, `${R} path`>
  | Diff<Sent<E["query"]>, Doc<NonNullable<Op["parameters"]["query"]>>, `${R} query`>
  | Diff<Sent<E["body"]>, Doc<JsonOf<NonNullable<Op["requestBody"]>>>, `${R} body`>
  | (E["status"] extends keyof Op["responses"]
      ? Diff<Answer<E["answer"]>, Doc<Readable<JsonOf<Op["responses"][E["status"]]>>>, `${R} answer`>
      : `${R}: the document has no ${E["status"]} answer`);

// Operations of the document that no route of the SDK's table reaches.
type Unrouted = Exclude<DocumentOperation, { [R in keyof Routes]: `${Routes[R]["verb"]} ${Routes[R]["path"]}` }[keyof Routes]> extends infer X extends string
  ? X extends unknown
    ? `${X}: in the document, not among the SDK's routes`
    : never
  : never;
type DocumentOperation = {
  [P in keyof paths & string]: { [V in Verb]: [NonNullable<paths[P][V]>] extends [never] ? never : `${V} ${P}` }[Verb];
}[keyof paths & string];

type JsonOf<T> = T extends { content: { "application/json": infer J } } ? J : never;

// Presence is not compared: the document marks `required` only the REQUIRED
// fields, the SDK writes what is set. Int64 is compared as a number: the
// document says integer, and the string beyond 2^53 in words only.
type Norm<T> = T extends Int64Text
  ? never
  : T extends readonly (infer E)[]
    ? Norm<E>[]
    : T extends object
      ? { [K in keyof T]-?: Norm<Exclude<T[K], undefined>> }
      : T;

/** What the SDK sends: INPUT_ONLY fields included. */
type Sent<T> = Norm<Unwrap<T>>;
/** What the SDK reads: no answer carries an INPUT_ONLY field. */
type Answer<T> = Norm<WithoutInputOnly<T>>;
/** The document's side: readOnly and writeOnly markers dropped (answers went through Readable first). */
type Doc<T> = Norm<Unwrap<T>>;

type Unwrap<T> =
  T extends InputOnly<infer U>
    ? Unwrap<U>
    : T extends $Read<infer U> | $Write<infer U>
      ? Unwrap<U>
      : T extends readonly (infer E)[]
        ? Unwrap<E>[]
        : T extends object
          ? { [K in keyof T]: Unwrap<T[K]> }
          : T;

type WithoutInputOnly<T> = T extends readonly (infer E)[]
  ? WithoutInputOnly<E>[]
  : T extends object
    ? { [K in keyof T as NonNullable<T[K]> extends InputOnly<unknown> ? never : K]: WithoutInputOnly<T[K]> }
    : T;

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Otherwise<D, Else> = [D] extends [never] ? Else : D;

type Diff<A, B, P extends string> =
  Same<A, B> extends true
    ? never
    : [A, B] extends [readonly (infer X)[], readonly (infer Y)[]]
      ? Diff<X, Y, `${P}[]`>
      : [A, B] extends [object, object]
        ? ObjectDiff<A, B, P>
        : Otherwise<Values<A, B, P>, `${P}: the types differ`>;

type ObjectDiff<A, B, P extends string> = Otherwise<
  | { [K in Exclude<keyof A, keyof B> & string]: `${P}.${K}: only in the SDK` }[Exclude<keyof A, keyof B> & string]
  | { [K in Exclude<keyof B, keyof A> & string]: `${P}.${K}: only in the document` }[Exclude<keyof B, keyof A> & string]
  | { [K in keyof A & keyof B & string]: Diff<A[K], B[K], `${P}.${K}`> }[keyof A & keyof B & string],
  `${P}: the types differ`
>;

// Enum spellings: each value that only one side has.
type Values<A, B, P extends string> = [A, B] extends [string, string]
  ? (Exclude<A, B> extends infer X extends string ? (X extends unknown ? `${P}: "${X}" only in the SDK` : never) : never)
    | (Exclude<B, A> extends infer X extends string ? (X extends unknown ? `${P}: "${X}" only in the document` : never) : never)
  : never;
