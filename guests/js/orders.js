// orders.js: the order record the sample JavaScript guests read, as the Rust
// crate `guests/orders` defines it: one JSON object per record value, as
// `weir produce --generate` writes them.

/**
 * Parses an order the way the Rust guests' serde does: an object whose five
 * fields (`id`, `customer`, `amount_cents`, `currency`, `country`) have the
 * right types; extra fields are ignored. Throws an Error saying what was wrong.
 */
export function parseOrder(text) {
  const o = JSON.parse(text);
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new Error('expected an object');
  }
  const integer = (name, min) => {
    if (!Number.isSafeInteger(o[name]) || o[name] < min) {
      throw new Error(`field ${name} must be an integer`);
    }
  };
  const string = (name) => {
    if (typeof o[name] !== 'string') throw new Error(`field ${name} must be a string`);
    // JSON.parse accepts an escaped lone surrogate ("\ud800"); serde, and UTF-8, do not.
    if (/[\uD800-\uDFFF]/u.test(o[name])) throw new Error(`field ${name} has a lone surrogate`);
  };
  integer('id', 0);
  integer('amount_cents', Number.MIN_SAFE_INTEGER);
  string('customer');
  string('currency');
  string('country');
  return o;
}

/** `s` as a JSON string literal, escaped as serde_json escapes it. */
export function jsonString(s) {
  return JSON.stringify(s);
}
