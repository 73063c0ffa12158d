// weir-guest.js: the JavaScript helper for weir guests.
//
// It mirrors the Rust SDK (`guests/sdk`): a `Batch` whose `records()` are views
// that resolve the columnar spans for you (`offset`, `timestamp`, `key`,
// `value`, `headers`), `emit` and `log` wrapping the host imports, and
// `record.fail(kind, message)` building the failure the host acts on. A guest
// author never handles spans by hand:
//
//     import { processor, emit, FailureKind } from '../weir-guest.js';
//
//     const guest = processor({
//       process(batch) {
//         for (const r of batch.records()) {
//           emit('upper', r.key, r.valueText().toUpperCase());
//         }
//       },
//     });
//     export const init = guest.init;
//     export const process = guest.process;
//
// Conventions of the bindings (componentize-js): `u64`/`s64` arrive as BigInt,
// `list<u8>` as Uint8Array, enums as their WIT names ('dead-letter'), and an
// exported function's `err` is the `payload` of what it throws. A guest that
// throws anything but a `Failure` has a bug: the call traps, the host does not
// commit the batch and backs off, as it does for a Rust panic.

import * as host from 'weir:processor/host@0.1.0';

/** What the host does with a failed record (the WIT `failure-kind`). */
export const FailureKind = Object.freeze({
  Retry: 'retry',
  Skip: 'skip',
  DeadLetter: 'dead-letter',
  Fatal: 'fatal',
});

/** The severity of a log line (the WIT `level`). */
export const Level = Object.freeze({
  Trace: 'trace',
  Debug: 'debug',
  Info: 'info',
  Warn: 'warn',
  Error: 'error',
});

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The processor's configuration, as given to `init`. */
export class Config {
  constructor(pairs) {
    /** Every [key, value] pair, in the order the host gave them. */
    this.pairs = pairs;
  }

  /** The value of `key`, or `undefined` if it was not configured. */
  get(key) {
    const pair = this.pairs.find(([k]) => k === key);
    return pair === undefined ? undefined : pair[1];
  }
}

/** A failure pointing at one record; throw it from `process`. */
export class Failure extends Error {
  constructor(index, kind, message) {
    super(message);
    this.index = index;
    this.kind = kind;
    // componentize-js lowers the thrown value's `payload` as the WIT `err`.
    this.payload = { index, kind, message };
  }
}

/** The key length that marks a record without a key. */
const NO_KEY = 0xffffffff;
/** Integers per record in `spans`, and per header in `headers`. */
const SPAN_WIDTH = 6;
const HEADER_WIDTH = 4;

/** A polled batch: consecutive records from one partition of one topic. */
export class Batch {
  constructor(raw) {
    this.raw = raw;
    /** The topic the records came from. */
    this.topic = raw.topic;
    /** The partition the records came from. */
    this.partition = raw.partition;
    /** The partition's high watermark when the batch was read (BigInt). */
    this.highWatermark = raw.highWatermark;
  }

  /** How many records the batch holds. */
  get length() {
    return this.raw.offsets.length;
  }

  /** The records, in offset order, as `Record` views. */
  *records() {
    for (let index = 0; index < this.raw.offsets.length; index++) {
      yield new Record(this, index);
    }
  }

  /** The bytes `data[start .. start + len]` of the arena (a view, not a copy). */
  bytes(start, len) {
    return this.raw.data.subarray(start, start + len);
  }
}

/** A view of one record of a `Batch`. */
export class Record {
  constructor(batch, index) {
    this.batch = batch;
    /** The record's position in its batch; a `Failure` names it. */
    this.index = index;
    // Six integers per record: key start/len, value start/len, first header, count.
    this.span = batch.raw.spans.slice(index * SPAN_WIDTH, (index + 1) * SPAN_WIDTH);
  }

  /** The record's offset in its partition (BigInt). */
  get offset() {
    return this.batch.raw.offsets[this.index];
  }

  /** Milliseconds since the Unix epoch (BigInt). */
  get timestamp() {
    return this.batch.raw.timestamps[this.index];
  }

  /** The key as bytes, or `undefined` for a record produced without one. */
  get key() {
    const [start, len] = this.span;
    return len === NO_KEY ? undefined : this.batch.bytes(start, len);
  }

  /** The value as bytes. */
  get value() {
    return this.batch.bytes(this.span[2], this.span[3]);
  }

  /** The value decoded as UTF-8; throws a TypeError if it is not valid UTF-8. */
  valueText() {
    return strictUtf8.decode(this.value);
  }

  /** The headers, as [name, value bytes] pairs in the order they were produced. */
  get headers() {
    const [first, count] = [this.span[4], this.span[5]];
    const table = this.batch.raw.headers;
    const out = [];
    for (let i = first; i < first + count; i++) {
      const h = table.slice(i * HEADER_WIDTH, (i + 1) * HEADER_WIDTH);
      out.push([strictUtf8.decode(this.batch.bytes(h[0], h[1])), this.batch.bytes(h[2], h[3])]);
    }
    return out;
  }

  /** The value of the first header called `name`, or `undefined`. */
  header(name) {
    const found = this.headers.find(([n]) => n === name);
    return found === undefined ? undefined : found[1];
  }

  /** A `Failure` pointing at this record: `throw record.fail(kind, message)`. */
  fail(kind, message) {
    return new Failure(this.index, kind, String(message));
  }
}

/** Thrown by `emit` when the host refuses a record (unknown topic, too large). */
export class EmitError extends Error {}

function bytes(x) {
  return typeof x === 'string' ? utf8.encode(x) : x;
}

/**
 * Queues a record for `topic`; it is appended only if the current batch
 * succeeds. `key` and `value` are strings (sent as UTF-8) or Uint8Arrays; a
 * missing key means "no key". `headers` is a list of [name, value] pairs.
 * Throws an `EmitError` when the host refuses the record.
 */
export function emit(topic, key, value, headers = []) {
  try {
    host.emit(
      topic,
      key === undefined || key === null ? undefined : bytes(key),
      bytes(value),
      headers.map(([name, v]) => [name, bytes(v)]),
    );
  } catch (e) {
    const reason = e && Object.prototype.hasOwnProperty.call(e, 'payload') ? e.payload : e;
    throw new EmitError(String(reason));
  }
}

/** Writes a line to the host's log, tagged with the processor's name. */
export function log(level, message) {
  host.log(level, String(message));
}

/**
 * Wraps a guest's `{ init(config), process(batch) }` into the two functions the
 * component exports. `init` may be left out (it accepts any configuration) and
 * may throw an Error to reject the configuration. `process` finishes normally
 * to commit the whole batch, or throws `record.fail(...)`.
 */
export function processor(guest) {
  return {
    init(pairs) {
      if (guest.init === undefined) return;
      try {
        guest.init(new Config(pairs));
      } catch (e) {
        // The WIT error of `init` is a string.
        throw { payload: String(e && e.message !== undefined ? e.message : e) };
      }
    },
    process(raw) {
      try {
        guest.process(new Batch(raw));
      } catch (e) {
        if (e instanceof Failure) throw e;
        // Any other exception is a bug in the guest. Name it on stderr (the
        // host quotes the end of stderr in its trap error), then let it
        // propagate: it is no valid failure, so the call traps.
        const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        console.error(`uncaught exception in process: ${what.slice(0, 300)}`);
        throw e;
      }
    },
  };
}
