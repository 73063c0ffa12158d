// careless, in JavaScript: a deliberately buggy guest for the tests. It emits
// each order's id to `ids` (or the `output` configuration key) and never
// expects malformed JSON, so `JSON.parse` throws a SyntaxError out of
// `process`. The host sees a trap: it commits nothing and retries, then gives up.

import { processor, emit } from '../weir-guest.js';

let topic = 'ids';

const guest = processor({
  init(config) {
    topic = config.get('output') ?? 'ids';
  },

  process(batch) {
    for (const record of batch.records()) {
      const order = JSON.parse(record.valueText()); // throws on malformed input: the bug
      emit(topic, undefined, String(order.id));
    }
  },
});

export const init = guest.init;
export const process = guest.process;
