"""dedupe-orders, in Python: idempotent processing on the helper's
:class:`weir_guest.Dedupe`. Forwards every order to ``orders-unique`` (or the
``output`` configuration key) the first time its id is seen within ``ttl_ms``
(default one hour, in the records' own timestamps) and drops the repeats:
orders a producer sent twice, or a batch redelivered after a crash. Expired
ids are forgotten a few at a time, every batch. A malformed order is
dead-lettered.

The same logic and state keys as the Rust guest ``guests/dedupe-orders``.
"""

import re

import weir_guest as weir
from orders import parse_order

#: Expired ids forgotten per batch at most.
EXPIRE_PER_BATCH = 1000


class DedupeOrders(weir.Processor):
    def init(self, config: weir.Config) -> None:
        self.topic = config.get("output", "orders-unique")
        self.ttl_ms = 3_600_000
        ttl = config.get("ttl_ms")
        if ttl is not None:
            # As Rust's `str::parse::<i64>`: an optional sign, ASCII digits, in range.
            if not re.fullmatch(r"[+-]?[0-9]+", ttl) or not -(1 << 63) <= int(ttl) < 1 << 63:
                raise ValueError(f"ttl_ms must be a number, got {ttl!r}")
            self.ttl_ms = int(ttl)

    def process(self, batch: weir.Batch) -> None:
        seen = weir.Dedupe("orders", self.ttl_ms)
        last = None
        for record in batch.records():
            try:
                order = parse_order(record.value)
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError too
                raise record.fail(weir.FailureKind.DEAD_LETTER, f"malformed order: {e}")
            try:
                if seen.first_seen(str(order["id"]), record.timestamp):
                    weir.emit(self.topic, record.key, record.value)
            except (weir.StateError, weir.EmitError) as e:
                raise record.fail(weir.FailureKind.FATAL, e)
            last = record
        if last is not None:
            seen.expire(last.timestamp, EXPIRE_PER_BATCH)


WitWorld = weir.export_processor(DedupeOrders)
