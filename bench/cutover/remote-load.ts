// The parent's side of clients.ts: forks the clients' process and gives the
// benchmark what the in-process load gave it — acknowledgement times on this
// process's performance.now() clock, refusals, errors, and what was written.
import { fork } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { ClientsOptions, FromClients, ToClients } from "./clients";
import type { Load } from "./load";

export interface RemoteLoad extends Pick<Load, "ackTimes" | "errors" | "refusals" | "deadlocks" | "expected" | "stop"> {
  /** Resolves once every acknowledgement the clients made so far is in ackTimes. */
  sync(): Promise<void>;
  /** When the clients' own process stood still, and for how long (ms), on this process's clock. */
  readonly stalls: { at: number; ms: number; kind: "gc" | "held" }[];
  /** What the clients did around a switch (routings heard, connections made), on this process's clock. */
  readonly marks: { at: number; text: string }[];
}

export async function startRemoteLoad(options: ClientsOptions): Promise<RemoteLoad> {
  const child = fork(join(import.meta.dirname, "clients.mjs"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ackTimes: number[] = [];
  const stalls: { at: number; ms: number; kind: "gc" | "held" }[] = [];
  const marks: { at: number; text: string }[] = [];
  const errors: string[] = [];
  const orders = new Set<string>();
  let names = new Map<string, string>();
  let refusals = 0;
  let deadlocks = 0;
  let syncs = 0;
  const waiting = new Map<number, () => void>();
  let stopped: (() => void) | undefined;
  child.on("message", (m: FromClients) => {
    if (m.type === "acks") for (const t of m.at) ackTimes.push(t - performance.timeOrigin);
    else if (m.type === "marks") for (const [at, text] of m.at) marks.push({ at: at - performance.timeOrigin, text });
    else if (m.type === "stalls") for (const [at, ms, kind] of m.at) stalls.push({ at: at - performance.timeOrigin, ms, kind });
    else if (m.type === "synced") waiting.get(m.id)?.();
    else if (m.type === "orders") for (const o of m.orders) orders.add(o);
    else if (m.type === "stopped") {
      names = new Map(m.names);
      refusals = m.refusals;
      deadlocks = m.deadlocks;
      errors.push(...m.errors);
      stopped?.();
    }
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const send = (m: ToClients) => child.send(m);
  send({ type: "start", options });
  let stopping: Promise<void> | undefined;
  return {
    ackTimes,
    stalls,
    marks,
    errors,
    refusals: () => refusals,
    deadlocks: () => deadlocks,
    expected: () => ({ orders, names }),
    sync() {
      const id = ++syncs;
      const done = new Promise<void>((resolve) => waiting.set(id, resolve));
      send({ type: "sync", id });
      return done.finally(() => waiting.delete(id));
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || !child.connected) return;
        const done = new Promise<void>((resolve) => (stopped = resolve));
        send({ type: "stop" });
        await Promise.race([done, exited]);
        // It exits once it has said what it wrote; one that does not within a second is ended.
        const late = setTimeout(() => child.kill(), 1_000);
        await exited;
        clearTimeout(late);
      })();
      return stopping;
    },
  };
}
