// dedupe-orders, in JavaScript: idempotent processing on the helper's
// `Dedupe`. Forwards every order to `orders-unique` (or the `output`
// configuration key) the first time its id is seen within `ttl_ms` (default
// one hour, in the records' own timestamps) and drops the repeats: orders a
// producer sent twice, or a batch redelivered after a crash. Expired ids are
// forgotten a few at a time, every batch. A malformed order is dead-lettered.
//
// The same logic and state keys as the Rust guest `guests/dedupe-orders`.

import { processor, emit, Dedupe, EmitError, FailureKind, StateError } from '../weir-guest.js';
import { parseOrder } from '../orders.js';

/** Expired ids forgotten per batch at most. */
const EXPIRE_PER_BATCH = 1000;

let topic = 'orders-unique';
let ttlMs = 3600000n;

const guest = processor({
  init(config) {
    topic = config.get('output') ?? 'orders-unique';
    const ttl = config.get('ttl_ms');
    if (ttl !== undefined) {
      // As Rust's `str::parse::<i64>`: an optional sign, digits, in range.
      const parsed = /^[+-]?[0-9]+$/.test(ttl) ? BigInt(ttl) : undefined;
      if (parsed === undefined || BigInt.asIntN(64, parsed) !== parsed) {
        throw new Error(`ttl_ms must be a number, got ${JSON.stringify(ttl)}`);
      }
      ttlMs = parsed;
    }
  },

  process(batch) {
    const seen = new Dedupe('orders', ttlMs);
    let last;
    for (const record of batch.records()) {
      let order;
      try {
        order = parseOrder(record.valueText());
      } catch (e) {
        throw record.fail(FailureKind.DeadLetter, `malformed order: ${e.message}`);
      }
      try {
        if (seen.firstSeen(String(order.id), record.timestamp)) {
          emit(topic, record.key, record.value);
        }
      } catch (e) {
        if (!(e instanceof StateError || e instanceof EmitError)) throw e;
        throw record.fail(FailureKind.Fatal, e.message);
      }
      last = record;
    }
    if (last !== undefined) seen.expire(last.timestamp, EXPIRE_PER_BATCH);
  },
});

export const init = guest.init;
export const process = guest.process;
