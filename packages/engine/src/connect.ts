// Every database session the engine opens. pg emits 'error' on a client when
// the server goes away between queries; without a listener Node would crash
// the whole process. The failure still reaches the owner: its next query
// rejects.
import pg from "pg";

export async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  // A host that does not answer at all must fail like one that refuses, not hang.
  const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...config });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}
