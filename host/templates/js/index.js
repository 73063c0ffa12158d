// {{name}}: a weir guest. For every record it counts the records seen so far
// under the record's key (in state, under `count/<key>`) and emits the value
// in upper case to the topic named by the `output` configuration key (default
// `out`), with that count in the header `count`. A record with an empty value
// is sent to the dead-letter topic.

import { processor, emit, log, state, FailureKind, Level } from './weir-guest.js';

const text = new TextDecoder();
let topic = 'out';

const guest = processor({
  init(config) {
    topic = config.get('output') ?? 'out';
  },

  process(batch) {
    for (const record of batch.records()) {
      const value = record.valueText();
      if (value.length === 0) {
        log(Level.Warn, `empty value at offset ${record.offset}`);
        throw record.fail(FailureKind.DeadLetter, 'empty value');
      }
      const key = `count/${record.key === undefined ? '' : text.decode(record.key)}`;
      const stored = state.get(key);
      const count = String((stored === undefined ? 0 : Number(text.decode(stored))) + 1);
      state.put(key, count);
      emit(topic, record.key, value.toUpperCase(), [['count', count]]);
    }
  },
});

export const init = guest.init;
export const process = guest.process;
