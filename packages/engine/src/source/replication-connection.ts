// A thin walsender client on `pg`: replication commands, and a pgoutput stream
// whose position reports never run ahead of what the caller acknowledged, so a
// crash can only ever replay changes, never lose them.
import type { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import pg from "pg";
import { formatLsn, parseLsn, type Lsn } from "../types";
import { DeliveryQueue } from "./delivery-queue";
import { PgOutputDecoder, dateToPgTimestamp, type PgOutputMessage } from "./pgoutput";
import { ReadGate } from "./read-gate";

/** A server or connection failure, keeping PostgreSQL's text and SQLSTATE for callers that branch on them. */
export class ReplicationError extends Error {
  override name = "ReplicationError";
  /** PostgreSQL's SQLSTATE, when the server reported the error. */
  readonly sqlState: string | undefined;
  constructor(message: string, options: { cause?: unknown; sqlState?: string } = {}) {
    super(message, { cause: options.cause });
    this.sqlState = options.sqlState;
  }
}

/** What START_REPLICATION streams, and how much may wait for the consumer. */
export interface StartOptions {
  slot: string;
  publication: string;
  /** Where to resume: the server starts at the later of this and the slot's confirmed_flush_lsn. */
  startLsn: Lsn;
  /** Ask pgoutput for pg_logical_emit_message() messages (they are dropped otherwise). */
  messages?: boolean;
  /** Ask pgoutput for values in binary format (binary transfer; every published type must have binary I/O). */
  binary?: boolean;
  /**
   * Milliseconds to pause reading after a small read (0: never), so a stream
   * of small transactions is read many messages at a time. Adds at most
   * this much latency; the QoS tier sets it within its flush interval.
   */
  coalesceMs?: number;
  /**
   * The least milliseconds between two reports of acknowledged (or, caught up, confirmed) positions
   * (0: each at once, which the Synchronous tier needs: its source's commits
   * wait for the report). Each report has the walsender update the slot;
   * the last one trails.
   */
  ackIntervalMs?: number;
  /** Pause reading past this many queued messages; memory stays bounded whatever the transaction size. */
  maxQueuedMessages?: number;
  /** Pause reading past this many queued payload bytes. */
  maxQueuedBytes?: number;
  /** How often to report the acknowledged position unprompted; must stay below the server's wal_sender_timeout. */
  statusIntervalMs?: number;
  /**
   * Whether every message handled so far is applied and acknowledged —
   * nothing gathered, nothing applying, no transaction half received. When
   * it is, and nothing waits in the queue, a keepalive's position is
   * confirmed: the server sent everything before it (pgoutput sends a
   * transaction whole, at its commit), so whatever lies between the last
   * transaction and that position carried nothing this stream publishes.
   * Without it a fast shutdown of the source never ends: the walsender waits
   * for its WAL to be confirmed up to what it sent (the shutdown checkpoint
   * included), and our replies keep its wal_sender_timeout away.
   */
  caughtUp?: () => boolean;
}

/** Receives each message in order; the next one waits for a returned promise. */
export type MessageHandler = (message: PgOutputMessage) => void | Promise<void>;

/** The parts of pg's internal Connection a replication stream needs (not in @types/pg). */
interface WireConnection extends EventEmitter {
  stream: Duplex;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

const DEFAULT_MAX_QUEUED_MESSAGES = 1000;
const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
const DEFAULT_STATUS_INTERVAL_MS = 10_000;
// A read smaller than this is taken as a trickle of small transactions, worth pausing after (coalesceMs).
const COALESCE_BELOW_BYTES = 16 * 1024;
// How long close() waits for the server to end COPY before dropping the socket.
const CLOSE_GRACE_MS = 5_000;
// XLogData header: 'w', walStart u64, walEnd u64, sendTime i64.
const XLOG_DATA_HEADER = 25;

/** Wraps a pg/PostgreSQL error so the message says what we were doing yet keeps the server's own text. */
function wrapError(context: string, error: unknown): Error {
  if (error instanceof ReplicationError) return error;
  const e = error as { message?: unknown; code?: unknown; detail?: unknown } | undefined;
  const text = typeof e?.message === "string" ? e.message : String(error);
  const sqlState = typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const detail = typeof e?.detail === "string" ? ` — ${e.detail}` : "";
  const state = sqlState ? ` (SQLSTATE ${sqlState})` : "";
  return new ReplicationError(`${context}: ${text}${detail}${state}`, sqlState ? { cause: error, sqlState } : { cause: error });
}

/** Replication-protocol string literals know no backslash escapes, so pg.escapeLiteral's E'' form is invalid here. */
function replicationLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export class ReplicationConnection {
  private readonly wire: WireConnection;
  private closing: Promise<void> | undefined;
  private fatal: unknown;

  // Per-stream state, reset by start().
  private streaming = false;
  private inCopy = false; // CopyBoth established and CopyDone not yet sent: the only time CopyData may go out
  private stopRequested = false;
  private caughtUp: (() => boolean) | undefined;
  private failure: { error: unknown } | undefined;
  private queue: DeliveryQueue<Buffer> | undefined;
  private streamDone: Promise<unknown> | undefined;
  // Between a Begin and its Commit of the stream.
  private midTransaction = false;

  private _serverWalEnd: Lsn = 0n;
  private _lastAcknowledged: Lsn = 0n;
  private statusSentAt = 0;
  private ackIntervalMs = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  private _keepalivesReceived = 0;
  private _repliesRequested = 0;
  private _statusReports = 0;

  private constructor(private readonly client: pg.Client) {
    this.wire = client.connection as unknown as WireConnection;
    // Without a listener, a dropped socket would crash the process; the pending command reports it instead.
    client.on("error", (error) => {
      this.fatal ??= error;
    });
  }

  /** Opens a walsender connection in database mode, which logical decoding requires. */
  static async connect(config: pg.ClientConfig | string): Promise<ReplicationConnection> {
    const base: pg.ClientConfig = typeof config === "string" ? { connectionString: config } : config;
    const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...base, replication: "database" } as pg.ClientConfig);
    const connection = new ReplicationConnection(client);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw wrapError("connecting for replication", error);
    }
    return connection;
  }

  /** Latest WAL end the server reported: the source's position, for measuring lag. */
  get serverWalEnd(): Lsn {
    return this._serverWalEnd;
  }
  /** Highest LSN acknowledged: the only position this connection ever reports as written or flushed. */
  get lastAcknowledged(): Lsn {
    return this._lastAcknowledged;
  }
  /** Most messages queued for the consumer during the latest stream, to check backpressure held. */
  get maxQueued(): number {
    return this.queue?.maxQueued ?? 0;
  }
  /** Most payload bytes queued for the consumer during the latest stream. */
  get maxQueuedBytes(): number {
    return this.queue?.maxQueuedBytes ?? 0;
  }
  /** Keepalives seen, so callers (and tests) can tell the server pinged. */
  get keepalivesReceived(): number {
    return this._keepalivesReceived;
  }

  /** Keepalives that demanded a reply: each one was answered with lastAcknowledged. */
  get repliesRequested(): number {
    return this._repliesRequested;
  }

  /** Standby status updates sent (replies, acknowledgments, confirmed keepalives and the periodic one). */
  get statusReports(): number {
    return this._statusReports;
  }

  /** Reports the cluster's identity and current WAL position, e.g. to detect a restored or different source. */
  async identifySystem(): Promise<{ systemId: string; timeline: number; xlogPos: Lsn; dbName: string }> {
    const row = await this.commandRow("IDENTIFY_SYSTEM", "identifying the system");
    return {
      systemId: String(row.systemid),
      timeline: Number(row.timeline),
      xlogPos: parseLsn(String(row.xlogpos)),
      dbName: row.dbname == null ? "" : String(row.dbname),
    };
  }

  /**
   * Creates a pgoutput slot and exports its snapshot, so a snapshot copy sees exactly the data the slot's
   * changes start after. The snapshot stays importable (SET TRANSACTION SNAPSHOT) only until this
   * connection runs another command. A `temporary` slot lives only as long as this connection.
   */
  async createSlot(name: string, options: { temporary?: boolean } = {}): Promise<{ slotName: string; consistentPoint: Lsn; snapshotName: string }> {
    const sql = `CREATE_REPLICATION_SLOT ${pg.escapeIdentifier(name)}${options.temporary ? " TEMPORARY" : ""} LOGICAL pgoutput (SNAPSHOT 'export')`;
    const row = await this.commandRow(sql, `creating replication slot ${JSON.stringify(name)}`);
    return {
      slotName: String(row.slot_name),
      consistentPoint: parseLsn(String(row.consistent_point)),
      snapshotName: String(row.snapshot_name),
    };
  }

  /** Drops a slot so the server stops retaining WAL for it; `wait` waits out another session still using it. */
  async dropSlot(name: string, wait = true): Promise<void> {
    const sql = `DROP_REPLICATION_SLOT ${pg.escapeIdentifier(name)}${wait ? " WAIT" : ""}`;
    await this.command(sql, `dropping replication slot ${JSON.stringify(name)}`);
  }

  /**
   * Streams the slot's changes to `onMessage`, one at a time, in order. Resolves when close() ends the
   * stream; rejects on a server or connection error, or with the handler's own error (which stops the stream).
   */
  async start(options: StartOptions, onMessage: MessageHandler): Promise<void> {
    this.assertIdle("start replication");
    const sql =
      `START_REPLICATION SLOT ${pg.escapeIdentifier(options.slot)} LOGICAL ${formatLsn(options.startLsn)} ` +
      `(proto_version '1', publication_names ${replicationLiteral(pg.escapeIdentifier(options.publication))}, ` +
      `messages '${options.messages ? "true" : "false"}'${options.binary ? ", binary 'true'" : ""})`;
    this.streaming = true;
    this.inCopy = false;
    this.stopRequested = false;
    this.failure = undefined;
    this.caughtUp = options.caughtUp;
    this.ackIntervalMs = options.ackIntervalMs ?? 0;
    // pgoutput resends Relation messages on every new stream, so the cache must not outlive one.
    const decoder = new PgOutputDecoder({ binary: options.binary ?? false });
    const socket = this.wire.stream;
    const gate = new ReadGate(socket);
    // Items are XLogData messages, borrowed from pg's read buffer unless they must wait.
    const queue = new DeliveryQueue<Buffer>({
      maxItems: options.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES,
      maxBytes: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
      // Unread data stays in the kernel: TCP backpressure then holds the server, whatever the transaction size.
      pause: () => gate.hold("queue"),
      resume: () => gate.release("queue"),
      deliver: (xlogData) => onMessage(decoder.decode(xlogData, XLOG_DATA_HEADER)),
      // pg-protocol reuses its read buffer, so a message that waits is copied.
      retain: (xlogData) => Buffer.from(xlogData),
      fail: (error) => this.fail(error),
    });
    this.queue = queue;
    const onCopyData = (message: { chunk: Buffer }) => this.receive(queue, message.chunk);
    const onCopyBoth = () => {
      this.inCopy = true;
      // close() may have come before the server switched to COPY; end it now that CopyDone is legal.
      if (this.stopRequested) this.endCopy();
    };
    // The server ends COPY only when shutting down; answering lets it finish cleanly, queued messages still flow.
    const onCopyDone = () => {
      if (this.inCopy) this.endCopy();
    };
    // After pg has parsed a read (its listener came first), maybe pause before the next.
    const coalesceMs = options.coalesceMs ?? 0;
    this.midTransaction = false;
    const onData = (chunk: Buffer) => gate.coalesce(chunk.length, COALESCE_BELOW_BYTES, coalesceMs, !this.midTransaction);
    this.wire.on("copyData", onCopyData);
    this.wire.once("replicationStart", onCopyBoth);
    this.wire.on("copyDone", onCopyDone);
    if (coalesceMs > 0) socket.on("data", onData);
    const timer = setInterval(() => this.sendStatus(), options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS);
    // The stream's promise, not this timer, is what should keep a process alive.
    timer.unref();

    let serverError: unknown;
    const query = this.client.query(sql).then(
      () => undefined,
      (error: unknown) => {
        serverError = error;
      },
    );
    this.streamDone = query;
    try {
      await query;
    } finally {
      clearInterval(timer);
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
      this.inCopy = false;
      this.wire.off("copyData", onCopyData);
      this.wire.off("replicationStart", onCopyBoth);
      this.wire.off("copyDone", onCopyDone);
      socket.off("data", onData);
      // Never leave the socket paused for the commands that follow.
      gate.open();
    }
    // Resolve only once no handler is running, so callers never see a message after start() settles.
    await queue.idle();
    this.streaming = false;
    // Set by callbacks during the stream, which TypeScript's narrowing cannot see.
    const failure = this.failure as { error: unknown } | undefined;
    if (failure) throw failure.error;
    // A forced disconnect during close() is expected, not a failure.
    if (serverError !== undefined && !this.closing) {
      throw wrapError(`streaming slot ${JSON.stringify(options.slot)}`, serverError);
    }
  }

  /**
   * Records that everything up to `lsn` is durably applied and tells the server, which may then recycle
   * that WAL. Never call it with a position that is not yet applied.
   */
  acknowledge(lsn: Lsn): void {
    if (lsn <= this._lastAcknowledged) return;
    this._lastAcknowledged = lsn;
    this.reportSoon();
  }

  /**
   * Reports lastAcknowledged at most once per ackIntervalMs, the last one
   * trailing: each report is a write on the socket and has the walsender
   * update the slot. With small transactions one per applied batch is most
   * of the stream's cost, and confirming every keepalive is worse: each
   * commit anywhere in the cluster wakes every walsender, and each then
   * pings its client, so with N tenants on one source each stream hears
   * N keepalives per commit of its own.
   */
  private reportSoon(): void {
    const wait = this.statusSentAt + this.ackIntervalMs - Date.now();
    if (wait <= 0) this.sendStatus();
    else this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      this.sendStatus();
    }, wait);
  }

  /** Ends the stream (queued messages are dropped; they will be resent from the last acknowledgment) and the connection. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.streaming) {
      this.stopStream();
      await this.within(this.streamDone ?? Promise.resolve(), CLOSE_GRACE_MS);
    }
    // client.end() destroys the socket itself if a command is still active, so this cannot hang on the server.
    await this.within(this.client.end().catch(() => {}), CLOSE_GRACE_MS);
  }

  private async within(promise: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    try {
      await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private assertIdle(what: string): void {
    if (this.closing) throw new ReplicationError(`cannot ${what}: the connection is closed`);
    // The walsender runs one command at a time; a command queued behind the stream would never run.
    if (this.streaming) throw new ReplicationError(`cannot ${what} while streaming`);
    if (this.fatal !== undefined) throw wrapError(`cannot ${what}: the connection failed`, this.fatal);
  }

  private async command(sql: string, context: string): Promise<pg.QueryResult> {
    this.assertIdle(context);
    try {
      return await this.client.query(sql);
    } catch (error) {
      throw wrapError(context, error);
    }
  }

  private async commandRow(sql: string, context: string): Promise<Record<string, unknown>> {
    const result = await this.command(sql, context);
    const row = result.rows[0] as Record<string, unknown> | undefined;
    if (!row) throw new ReplicationError(`${context}: the server returned no row`);
    return row;
  }

  private receive(queue: DeliveryQueue<Buffer>, chunk: Buffer): void {
    if (!this.streaming || this.stopRequested || chunk.length === 0) return;
    const kind = chunk[0];
    if (kind === 0x77 /* w: XLogData */) {
      if (chunk.length < XLOG_DATA_HEADER + 1) return this.fail(new ReplicationError("short XLogData message"));
      this.noteWalEnd(chunk.readBigUInt64BE(9));
      // pgoutput's Begin and Commit: whether the stream is between transactions (where read coalescing's trickle may go on).
      const tag = chunk[XLOG_DATA_HEADER];
      if (tag === 0x42 /* B */) this.midTransaction = true;
      else if (tag === 0x43 /* C */) this.midTransaction = false;
      queue.push(chunk, chunk.length - XLOG_DATA_HEADER);
    } else if (kind === 0x6b /* k: primary keepalive */) {
      if (chunk.length < 18) return this.fail(new ReplicationError("short keepalive message"));
      this._keepalivesReceived++;
      const walEnd = chunk.readBigUInt64BE(1);
      this.noteWalEnd(walEnd);
      const confirm = walEnd > this._lastAcknowledged && queue.settled && this.caughtUp?.() === true;
      if (confirm) this._lastAcknowledged = walEnd;
      // A reply the server asks for goes at once, out of band of the queue
      // (it only needs to hear we are alive and, caught up, where we are); a
      // confirmed position waits for the next report like an acknowledgment.
      if (chunk[17] === 1) {
        this._repliesRequested++;
        this.sendStatus();
      } else if (confirm) this.reportSoon();
    }
  }

  private noteWalEnd(walEnd: Lsn): void {
    if (walEnd > this._serverWalEnd) this._serverWalEnd = walEnd;
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.stopStream();
  }

  private stopStream(): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    // Undelivered messages were never acknowledged, so the next stream resends them.
    this.queue?.stop();
    if (this.inCopy) this.endCopy();
  }

  private endCopy(): void {
    // One last report so acknowledgments made just before close() reach the slot.
    this.sendStatus();
    this.inCopy = false;
    try {
      this.wire.endCopyFrom();
    } catch {
      // The socket is already gone; the pending START_REPLICATION reports that.
    }
  }

  private sendStatus(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.inCopy) return;
    this.statusSentAt = Date.now();
    this._statusReports++;
    const lsn = this._lastAcknowledged;
    const message = Buffer.alloc(34);
    message.write("r", 0, "latin1");
    // write = flush = apply: only positions the caller vouched for, never the server's walEnd.
    message.writeBigUInt64BE(lsn, 1);
    message.writeBigUInt64BE(lsn, 9);
    message.writeBigUInt64BE(lsn, 17);
    message.writeBigInt64BE(dateToPgTimestamp(new Date()), 25);
    message.writeUInt8(0, 33);
    try {
      this.wire.sendCopyFromChunk(message);
    } catch {
      // A dead socket surfaces through the pending START_REPLICATION instead.
    }
  }
}
