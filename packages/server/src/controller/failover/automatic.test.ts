// Which failed probes mean a source that is away (automatic failover may
// follow) and which mean a PostgreSQL that is up but refused us (it must
// not: its clients may be writing there).
import pg from "pg";
import { expect, test } from "vitest";
import { answeredBy } from "./automatic";

const answer = (code: string) => Object.assign(new pg.DatabaseError("refused", 0, "error"), { code });

test("no answer, a server shutting down or starting up: away; any other answer from PostgreSQL: up", () => {
  for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH"]) expect(answeredBy(Object.assign(new Error(code), { code }))).toBe(false);
  expect(answeredBy(new Error("Connection terminated due to connection timeout"))).toBe(false);
  expect(answeredBy(new Error("Query read timeout"))).toBe(false);
  for (const code of ["57P01", "57P02", "57P03", "08006"]) expect(answeredBy(answer(code)), code).toBe(false);
  for (const code of ["28P01", "28000", "3D000", "53300", "42501"]) expect(answeredBy(answer(code)), code).toBe(true);
});
