// weir-guest.js: the JavaScript helper for weir guests.
//
// It mirrors the Rust SDK (`guests/sdk`): a `Batch` whose `records()` are views
// that resolve the columnar spans for you (`offset`, `timestamp`, `key`,
// `value`, `headers`), `emit`, `Emits` (many records in one host call) and
// `log` wrapping the host imports,
// `record.fail(kind, message)` building the failure the host acts on, keyed
// `state` that commits with the batch, and `Dedupe` for idempotent processing
// on it. A guest author never handles spans by hand:
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
import * as witState from 'weir:processor/state@0.1.0';

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
    throw new EmitError(String(reasonOf(e)));
  }
}

/** Appends `x` to an `Emits`' byte arena; returns its [start, length]. */
function arena(emits, x) {
  const b = bytes(x);
  const start = emits.length;
  emits.chunks.push(b);
  emits.length += b.length;
  return [start, b.length];
}

/**
 * Records for one topic, queued by one host call (`send`): what `emit` does
 * for each, for the cost of a single crossing of the boundary instead of one
 * per record (the WIT `emit-batch`). The records are laid out as the host
 * reads batches: one byte arena and integer spans.
 *
 *     const out = new Emits('upper');
 *     for (const r of batch.records()) out.push(r.key, r.valueText().toUpperCase());
 *     out.send(); // throws an EmitError naming the first refused record
 *
 * All or nothing: when the topic does not exist or a record is too large,
 * nothing is queued. If `process` fails at a record after pushing, nothing
 * was sent; the host runs the records before it again, which sends theirs.
 */
export class Emits {
  constructor(topic) {
    this.topic = String(topic);
    this.spans = [];
    this.headers = [];
    this.chunks = [];
    this.length = 0;
  }

  /** Adds a record; nothing reaches the host until `send`. */
  push(key, value, headers = []) {
    const k = key === undefined || key === null ? [0, NO_KEY] : arena(this, key);
    const v = arena(this, value);
    const first = this.headers.length / HEADER_WIDTH;
    for (const [name, hv] of headers) {
      this.headers.push(...arena(this, name), ...arena(this, hv));
    }
    this.spans.push(k[0], k[1], v[0], v[1], first, headers.length);
  }

  /** How many records were pushed. */
  get count() {
    return this.spans.length / SPAN_WIDTH;
  }

  /** Queues every record, in order, to be appended if the batch succeeds,
   * and empties this `Emits` for reuse. */
  send() {
    if (this.spans.length === 0) return;
    const data = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      data.set(c, at);
      at += c.length;
    }
    const records = {
      topic: this.topic,
      spans: new Uint32Array(this.spans),
      headers: new Uint32Array(this.headers),
      data,
    };
    this.spans = [];
    this.headers = [];
    this.chunks = [];
    this.length = 0;
    try {
      host.emitBatch(records);
    } catch (e) {
      throw new EmitError(String(reasonOf(e)));
    }
  }
}

/** Writes a line to the host's log, tagged with the processor's name. */
export function log(level, message) {
  host.log(level, String(message));
}

/** Thrown by `state.put` when the host refuses a write (a key or value over
 * its limit, a spent budget), and by `Dedupe` on an entry it did not write. */
export class StateError extends Error {}

/** The message of an error a host import threw (its WIT `err` payload). */
function reasonOf(e) {
  return e && Object.prototype.hasOwnProperty.call(e, 'payload') ? e.payload : e;
}

/**
 * Keyed state, scoped to the processor and the input partition of the batch
 * being processed (the WIT `state` interface). Reads see the batch's own
 * writes; the writes commit with the batch's offset, and a failed batch's are
 * dropped. State survives restarts and moves with its partition, and a rewind
 * of the group puts it back as it was at the rewind point. Keys and values
 * are strings (stored as UTF-8) or Uint8Arrays; what comes back is bytes.
 */
export const state = Object.freeze({
  /** The value stored under `key` (a Uint8Array), or `undefined`. */
  get(key) {
    return witState.get(bytes(key));
  },

  /** Stores `value` under `key`; throws a `StateError`, changing nothing,
   * when the host refuses it. */
  put(key, value) {
    try {
      witState.put(bytes(key), bytes(value));
    } catch (e) {
      throw new StateError(String(reasonOf(e)));
    }
  },

  /** Removes `key` (a no-op when it is absent). */
  delete(key) {
    witState.delete(bytes(key));
  },

  /** Up to `limit` [key, value] entries whose keys start with `prefix` and
   * sort after `after` (when given), in key order. */
  scan(prefix, after, limit) {
    return witState.scan(
      bytes(prefix),
      after === undefined || after === null ? undefined : bytes(after),
      limit,
    );
  },

  /** The value under `key` parsed as JSON, or `undefined` when it is absent
   * or not UTF-8 JSON. */
  getJson(key) {
    const value = state.get(key);
    if (value === undefined) return undefined;
    try {
      return JSON.parse(strictUtf8.decode(value));
    } catch {
      return undefined;
    }
  },

  /** Stores `value` as JSON under `key`; throws a `StateError` as `put` does. */
  putJson(key, value) {
    state.put(key, JSON.stringify(value));
  },
});

const SIGN_BIT = 1n << 63n;

/** `at` (milliseconds, a BigInt or a Number) as 8 big-endian bytes of an s64. */
function millisBytes(at) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt.asIntN(64, BigInt(at)));
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Idempotent processing: remembers the ids it has seen for `ttlMs` (measured
 * in the records' own timestamps, so a replay decides the same way), and
 * forgets them after. The same keys and semantics as the Rust SDK's `Dedupe`,
 * so a guest may move between languages with its state:
 * `dedupe/<name>/id/<id>` holds the time the id was first seen (8 big-endian
 * bytes), and `dedupe/<name>/t/<time><id>` (the time with its sign bit
 * flipped, big-endian, so keys sort like times) indexes them for `expire`.
 */
export class Dedupe {
  /** A dedupe set called `name` (a processor may keep several). */
  constructor(name, ttlMs) {
    this.ids = utf8.encode(`dedupe/${name}/id/`);
    this.times = utf8.encode(`dedupe/${name}/t/`);
    this.ttlMs = BigInt(ttlMs);
  }

  #idKey(id) {
    return concat(this.ids, id);
  }

  #timeKey(at, id) {
    const flipped = new Uint8Array(8);
    new DataView(flipped.buffer).setBigUint64(0, BigInt.asUintN(64, at) ^ SIGN_BIT);
    return concat(this.times, flipped, id);
  }

  /**
   * `true` the first time `id` (a string or bytes) is seen at `nowMs` (a
   * BigInt such as `record.timestamp`, or a Number), or once its last sighting
   * is older than the TTL, and remembers it; `false` for a duplicate within the
   * TTL. Throws a `StateError` when the host refuses the write.
   */
  firstSeen(id, nowMs) {
    const idBytes = bytes(id);
    const now = BigInt.asIntN(64, BigInt(nowMs));
    const key = this.#idKey(idBytes);
    const seen = state.get(key);
    if (seen !== undefined) {
      if (seen.length !== 8) throw new StateError('corrupt dedupe entry');
      const at = new DataView(seen.buffer, seen.byteOffset, 8).getBigInt64(0);
      if (now - at < this.ttlMs) return false;
      state.delete(this.#timeKey(at, idBytes));
    }
    state.put(key, millisBytes(now));
    state.put(this.#timeKey(now, idBytes), new Uint8Array(0));
    return true;
  }

  /** Forgets up to `limit` ids whose TTL ran out by `nowMs`, oldest first;
   * returns how many. Call it once per batch to keep state bounded. */
  expire(nowMs, limit) {
    const now = BigInt.asIntN(64, BigInt(nowMs));
    let forgotten = 0;
    for (const [key] of state.scan(this.times, undefined, limit)) {
      const rest = key.subarray(this.times.length);
      if (rest.length < 8) {
        state.delete(key);
        continue;
      }
      const flipped = new DataView(rest.buffer, rest.byteOffset, 8).getBigUint64(0);
      const at = BigInt.asIntN(64, flipped ^ SIGN_BIT);
      if (now - at < this.ttlMs) break;
      state.delete(key);
      state.delete(this.#idKey(rest.subarray(8)));
      forgotten += 1;
    }
    return forgotten;
  }
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
