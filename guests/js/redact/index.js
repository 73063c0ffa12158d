// redact, in JavaScript: copies JSON records to `redacted` (or the `output`
// configuration key) with personal fields masked, using what JavaScript is
// good at: `JSON.parse`, a `JSON.stringify` replacer and regular expressions.
//
// Configuration:
// - `fields`: comma-separated field names whose string values become "***"
//   (default `customer`), at any depth;
// - `output`: the output topic.
// Anything that looks like an e-mail address in any other string is masked
// too. Each copy keeps its key and headers and gains the header
// `redacted-fields` listing what was masked. A value that is not JSON is
// skipped (the host commits past it), with a warning in the host's log. The
// copies of a batch are queued with one `emit-batch` call.

import { processor, Emits, log, FailureKind, Level } from '../weir-guest.js';

const EMAIL = /[\w.+-]+@[\w-]+(\.[\w-]+)+/g;

let topic = 'redacted';
let fields = new Set(['customer']);

const guest = processor({
  init(config) {
    topic = config.get('output') ?? 'redacted';
    const list = config.get('fields');
    if (list !== undefined) {
      fields = new Set(list.split(',').map((f) => f.trim()).filter((f) => f.length > 0));
    }
  },

  process(batch) {
    // Every copy goes in one host call at the end (`Emits`); a record that is
    // not JSON ends the call early, and the host runs the records before it
    // again, which sends their copies then.
    const out = new Emits(topic);
    for (const record of batch.records()) {
      let value;
      try {
        value = JSON.parse(record.valueText());
      } catch (e) {
        log(Level.Warn, `redact: offset ${record.offset} is not JSON: ${e.message}`);
        throw record.fail(FailureKind.Skip, `not JSON: ${e.message}`);
      }
      const masked = new Set();
      const json = JSON.stringify(value, (name, v) => {
        if (typeof v !== 'string') return v;
        if (fields.has(name)) {
          masked.add(name);
          return '***';
        }
        return v.replace(EMAIL, () => {
          masked.add(name);
          return '***@***';
        });
      });
      const headers = [...record.headers, ['redacted-fields', [...masked].sort().join(',')]];
      out.push(record.key, json, headers);
    }
    try {
      out.send();
    } catch (e) {
      throw batch.records().next().value.fail(FailureKind.Fatal, e.message);
    }
  },
});

export const init = guest.init;
export const process = guest.process;
