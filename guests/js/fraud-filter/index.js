// fraud-filter, in JavaScript: emits suspicious orders to the `alerts` topic
// (or the topic named by the `output` configuration key).
//
// The same logic as the Rust guest `guests/fraud-filter`, byte for byte: an
// order is suspicious when it is large (at least 5,000.00 in any currency), or
// when it is at least 2,000.00 and paid in a currency that is not its
// country's. The alert is keyed by customer and its value is a JSON object with
// a fixed field order. A malformed order is sent to the dead-letter topic.

import { processor, emit, FailureKind } from '../weir-guest.js';
import { jsonString, parseOrder } from '../orders.js';

const LARGE_CENTS = 500000;
const FOREIGN_CENTS = 200000;

let topic = 'alerts';

function homeCurrency(country) {
  switch (country) {
    case 'US':
      return 'USD';
    case 'GB':
      return 'GBP';
    case 'JP':
      return 'JPY';
    default:
      return 'EUR';
  }
}

function reason(order) {
  if (order.amount_cents >= LARGE_CENTS) return 'large-amount';
  if (order.amount_cents >= FOREIGN_CENTS && order.currency !== homeCurrency(order.country)) {
    return 'foreign-currency';
  }
  return undefined;
}

const guest = processor({
  init(config) {
    topic = config.get('output') ?? 'alerts';
  },

  process(batch) {
    for (const record of batch.records()) {
      let order;
      try {
        order = parseOrder(record.valueText());
      } catch (e) {
        throw record.fail(FailureKind.DeadLetter, `malformed order: ${e.message}`);
      }
      const why = reason(order);
      if (why === undefined) continue;
      const alert =
        `{"order_id":${order.id},"customer":${jsonString(order.customer)},` +
        `"amount_cents":${order.amount_cents},"currency":${jsonString(order.currency)},` +
        `"reason":"${why}"}`;
      try {
        emit(topic, order.customer, alert);
      } catch (e) {
        throw record.fail(FailureKind.Fatal, e.message);
      }
    }
  },
});

export const init = guest.init;
export const process = guest.process;
