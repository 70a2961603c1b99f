// Clients of a tenant that follow its routing, for failover tests: several
// connections, each running small transactions — an insert into users (its
// id from the sequence), an update of one of its own earlier users, an
// insert into orders, an update of one of its orders, now and then a delete
// of one — against whatever primary routing names. A write refused with
// 25006 (the fence: "not the primary, follow routing") is rolled back; the
// client reads routing until a new version names a primary that takes
// writes, connects there, and runs the transaction again. A deadlock (40P01:
// the fence locks the tables in its own order, and a transaction in flight
// may hold one and want another) is retried where it happened, as clients
// retry deadlocks. Any other error is a failure of the test.
//
// What they record is what a client knows: each transaction whose COMMIT
// returned, with the rows it left and the primary it committed on. Each
// client changes only rows it inserted itself, so the state every row of
// theirs must be in is known exactly: the last acknowledged write to it.
import type pg from "pg";

export interface Route {
  version: bigint;
  /** Where the primary is: "connection_id/database". */
  primary: string;
  writesBlocked: boolean;
}

export interface UserRow {
  id: string;
  name: string;
  email: string;
}

export interface OrderRow {
  id: string;
  user_id: string;
  amount: string;
  status: string;
}

/** One acknowledged transaction. */
export interface Ack {
  writer: number;
  primary: string;
  /** When COMMIT returned (this process's clock). */
  at: number;
  users: UserRow[];
  orders: OrderRow[];
  deletedOrders: string[];
}

export interface RoutedWriters {
  readonly acks: Ack[];
  /** 25006 refusals met, in all. */
  refusals(): number;
  /** Deadlocks met (40P01, with the fence's locks), each retried on the same primary. */
  deadlocks(): number;
  /** Errors other than 25006 and 40P01 (each fails the test). */
  readonly errors: string[];
  /** Acknowledged transactions on `primary` so far. */
  committedOn(primary: string): number;
  /** The rows of the writers' as the acknowledged writes left them (deleted orders absent). */
  expected(): { users: Map<string, UserRow>; orders: Map<string, OrderRow> };
  /** Ids of rows some acknowledged transaction on `primary` wrote (inserted, updated or deleted). */
  touchedOn(primary: string): { users: Set<string>; orders: Set<string> };
  stop(): Promise<void>;
}

export function startRoutedWriters(options: {
  writers: number;
  /** The tenant's routing as a client reads it (GetTenantRouting). */
  routing: () => Promise<Route>;
  connect: (primary: string) => Promise<pg.Client>;
  /** A mark in the rows this run writes (names start with it). */
  tag: string;
}): RoutedWriters {
  const acks: Ack[] = [];
  const errors: string[] = [];
  let refused = 0;
  let deadlocks = 0;
  let running = true;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const writer = (w: number) =>
    write(w).catch((e: unknown) => {
      errors.push(`writer ${w}: ${(e as Error).message}`);
    });
  const write = async (w: number) => {
    let route = await options.routing();
    let db = await options.connect(route.primary);
    const mine = { users: [] as string[], orders: [] as string[] };
    for (let i = 0; running; i++) {
      try {
        await db.query("BEGIN");
        const user = (await db.query<UserRow>("INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id::text, name, email", [
          `${options.tag}w${w}-${i}`,
          `${options.tag}w${w}.${i}@example.com`,
        ])).rows[0]!;
        const users = [user];
        if (mine.users.length > 0) {
          const earlier = mine.users[(i * 7) % mine.users.length]!;
          users.push((await db.query<UserRow>("UPDATE users SET name = $2 WHERE id = $1 RETURNING id::text, name, email", [earlier, `${options.tag}w${w}-${i}-updated`])).rows[0]!);
        }
        // Held open a moment: the fence finds transactions in flight.
        await sleep(1);
        const orders = [
          (await db.query<OrderRow>("INSERT INTO orders (user_id, amount, status) VALUES ($1, $2, 'new') RETURNING id::text, user_id::text, amount::text, status", [user.id, (i % 97) + 0.5])).rows[0]!,
        ];
        if (mine.orders.length > 0) {
          const earlier = mine.orders[(i * 3) % mine.orders.length]!;
          orders.push((await db.query<OrderRow>("UPDATE orders SET status = $2 WHERE id = $1 RETURNING id::text, user_id::text, amount::text, status", [earlier, `paid ${i}`])).rows[0]!);
        }
        const deletedOrders: string[] = [];
        if (i % 4 === 3 && mine.orders.length > 1) {
          const victim = mine.orders[0]!;
          await db.query("DELETE FROM orders WHERE id = $1", [victim]);
          deletedOrders.push(victim);
        }
        await db.query("COMMIT");
        acks.push({ writer: w, primary: route.primary, at: Date.now(), users, orders, deletedOrders });
        mine.users.push(user.id);
        mine.orders.push(orders[0]!.id);
        mine.orders = mine.orders.filter((o) => !deletedOrders.includes(o));
      } catch (e) {
        await db.query("ROLLBACK").catch(() => undefined);
        const code = (e as { code?: string }).code;
        // A deadlock with the fence's locks (it takes the tables in its own order): retried, as any client retries one.
        if (code === "40P01") {
          deadlocks++;
          continue;
        }
        if (code !== "25006") {
          errors.push(`writer ${w} on ${route.primary}: ${(e as Error).message} (${code ?? "no code"})`);
          await sleep(20);
          continue;
        }
        refused++;
        // Not the primary: follow routing to the one that takes writes now (while writes are blocked, wait for it), and write
        // there; routing unchanged and not blocked, try the same one again in a moment (a failover that rolled back lifts its fence).
        const was = route;
        for (;;) {
          route = await options.routing();
          if (!route.writesBlocked) break;
          if (!running) return db.end().catch(() => undefined);
          await sleep(5);
        }
        if (route.primary === was.primary) {
          await sleep(20);
          continue;
        }
        await db.end().catch(() => undefined);
        db = await options.connect(route.primary);
      }
    }
    await db.end().catch(() => undefined);
  };
  const loops = Array.from({ length: options.writers }, (_, w) => writer(w));

  return {
    acks,
    errors,
    refusals: () => refused,
    deadlocks: () => deadlocks,
    committedOn: (primary) => acks.filter((a) => a.primary === primary).length,
    expected() {
      const users = new Map<string, UserRow>();
      const orders = new Map<string, OrderRow>();
      for (const a of acks) {
        for (const u of a.users) users.set(u.id, u);
        for (const o of a.orders) orders.set(o.id, o);
        for (const d of a.deletedOrders) orders.delete(d);
      }
      return { users, orders };
    },
    touchedOn(primary) {
      const users = new Set<string>();
      const orders = new Set<string>();
      for (const a of acks.filter((x) => x.primary === primary)) {
        for (const u of a.users) users.add(u.id);
        for (const o of a.orders) orders.add(o.id);
        for (const d of a.deletedOrders) orders.add(d);
      }
      return { users, orders };
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
