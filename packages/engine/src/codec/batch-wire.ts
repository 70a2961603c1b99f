// The batch's hot messages written and read by hand: BatchItem, RowChange,
// Insert/Update/Delete, a Row in COPY form, and TransactionCommit — what a
// batch holds per row and per transaction. protobuf-es's generic
// (reflection-driven) codec costs several µs per row for these; by hand they
// cost a few varints and one copy. The layout is batch.proto's, field for
// field (proto3: zero values omitted), and the tests check it against
// protobuf-es in both directions. Everything else (relations, truncates,
// rows of values) goes through protobuf-es and is embedded as its bytes.

// Wire types.
const VARINT = 0;
const LEN = 2;

/** Bytes of `n` (an unsigned 32-bit integer) as a varint. */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Bytes of `n` (an unsigned 64-bit integer) as a varint. */
export function varint64Size(n: bigint): number {
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}

/** A field's key and length prefix, plus its `size` bytes. */
export function lenFieldSize(field: number, size: number): number {
  return varintSize(field << 3) + varintSize(size) + size;
}

/** A varint field's bytes, or 0 for proto3's omitted zero. */
export function varintFieldSize(field: number, n: number): number {
  return n === 0 ? 0 : varintSize(field << 3) + varintSize(n);
}

export function varint64FieldSize(field: number, n: bigint): number {
  return n === 0n ? 0 : varintSize(field << 3) + varint64Size(n);
}

/** Writes into a buffer sized exactly beforehand. */
export class WireWriter {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number): void {
    const buf = this.buf;
    while (n >= 0x80) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  varint64(n: bigint): void {
    // Below 2^32 (LSNs of small clusters, sequences): the number path.
    if (n <= 0xffffffffn) return this.varint(Number(n));
    while (n >= 0x80n) {
      this.buf[this.pos++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
  }

  /** A length-delimited field's key and length; its `size` bytes follow. */
  lenField(field: number, size: number): void {
    this.varint((field << 3) | LEN);
    this.varint(size);
  }

  varintField(field: number, n: number): void {
    if (n === 0) return;
    this.varint((field << 3) | VARINT);
    this.varint(n);
  }

  varint64Field(field: number, n: bigint): void {
    if (n === 0n) return;
    this.varint((field << 3) | VARINT);
    this.varint64(n);
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.lenField(field, bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
}

/** Reads fields from `buf[pos, end)`; throws a plain Error on malformed bytes. */
export class WireReader {
  /** The number and wire type of the field whose key next() read last. */
  field = 0;
  wire = 0;

  constructor(
    readonly buf: Buffer,
    public pos: number,
    public end: number,
  ) {}

  /**
   * Reads [start, end) until leave(), which restores the bounds it returns.
   * Nested messages are read by narrowing one reader, not by a reader each:
   * a batch holds three or four nested messages a row.
   */
  narrow(start: number, end: number): number {
    const outer = this.end;
    this.pos = start;
    this.end = end;
    return outer;
  }

  /** Narrows to the length-delimited field here (see narrow). */
  enter(): number {
    const start = this.len();
    return this.narrow(start, this.pos);
  }

  /** Moves past the field narrow() or enter() read, whatever of it was left, and restores the bounds. */
  leave(outer: number): void {
    this.pos = this.end;
    this.end = outer;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const byte = this.buf[this.pos++]!;
      if (shift === 28) {
        // The fifth byte: 4 more bits of a uint32; anything above is out of range.
        if (byte > 0x0f) throw new Error("varint out of uint32 range");
        return (result | (byte << 28)) >>> 0;
      }
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) return result >>> 0;
      shift += 7;
    }
  }

  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const byte = this.buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) {
        if (result >= 1n << 64n) throw new Error("varint out of uint64 range");
        return result;
      }
      shift += 7n;
    }
    throw new Error("varint longer than 10 bytes");
  }

  /**
   * Reads the next field's key into `field` (its number) and `wire` (its wire
   * type). Fields and plain numbers, not an object a field: a batch reads
   * several keys a row, and each object was garbage to collect.
   */
  next(): void {
    const key = this.varint();
    this.field = key >>> 3;
    this.wire = key & 7;
  }

  /** A length-delimited field: moves past it and returns where it starts (it ends at `pos`). */
  len(): number {
    const size = this.varint();
    const start = this.pos;
    if (size > this.end - start) throw new Error(`a field of ${size} bytes overruns its message`);
    this.pos = start + size;
    return start;
  }

  /** Moves past a field of an unknown number (a later version's), as protobuf does. */
  skip(wire: number): void {
    if (wire === VARINT) this.varint64();
    else if (wire === LEN) this.len();
    else if (wire === 1 || wire === 5) {
      this.pos += wire === 1 ? 8 : 4;
      if (this.pos > this.end) throw new Error("truncated fixed-size field");
    } else throw new Error(`unsupported wire type ${wire}`);
  }

  /** Checks that a field has the wire type its number has in batch.proto. */
  expect(wire: number, want: "varint" | "len", field: number): void {
    if (wire !== (want === "varint" ? VARINT : LEN)) throw new Error(`field ${field} has wire type ${wire}`);
  }
}
