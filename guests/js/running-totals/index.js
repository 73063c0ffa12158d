// running-totals, in JavaScript: for every order, updates its customer's
// totals in state and emits them to `customer-totals` (or the topic named by
// the `output` configuration key), keyed by customer, as
// `{"customer": C, "orders": N, "amount_cents": S}`: the count and amount
// after this order. A malformed order is dead-lettered.
//
// The same logic as the Rust guest `guests/running-totals`, byte for byte and
// key for key: the state under `customer/<C>` is `{"orders":N,"amount_cents":S}`,
// so the three languages' guests can take over each other's state.

import { processor, emit, state, EmitError, FailureKind, StateError } from '../weir-guest.js';
import { jsonString, parseOrder } from '../orders.js';

let topic = 'customer-totals';

/** The totals stored under `key`; zeros when there are none (or they are not
 * totals, as the Rust guest's `get_json` gives its default). */
function totalsOf(key) {
  const t = state.getJson(key);
  const valid =
    t !== null &&
    typeof t === 'object' &&
    Number.isSafeInteger(t.orders) &&
    t.orders >= 0 &&
    Number.isSafeInteger(t.amount_cents);
  return valid ? { orders: t.orders, amount_cents: t.amount_cents } : { orders: 0, amount_cents: 0 };
}

const guest = processor({
  init(config) {
    topic = config.get('output') ?? 'customer-totals';
  },

  process(batch) {
    for (const record of batch.records()) {
      let order;
      try {
        order = parseOrder(record.valueText());
      } catch (e) {
        throw record.fail(FailureKind.DeadLetter, `malformed order: ${e.message}`);
      }
      const key = `customer/${order.customer}`;
      const totals = totalsOf(key);
      totals.orders += 1;
      totals.amount_cents += order.amount_cents;
      const value =
        `{"customer":${jsonString(order.customer)},` +
        `"orders":${totals.orders},"amount_cents":${totals.amount_cents}}`;
      try {
        state.putJson(key, totals);
        emit(topic, order.customer, value);
      } catch (e) {
        if (!(e instanceof StateError || e instanceof EmitError)) throw e;
        throw record.fail(FailureKind.Fatal, e.message);
      }
    }
  },
});

export const init = guest.init;
export const process = guest.process;
