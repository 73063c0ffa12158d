"""running-totals, in Python: for every order, updates its customer's totals
in state and emits them to ``customer-totals`` (or the topic named by the
``output`` configuration key), keyed by customer, as
``{"customer": C, "orders": N, "amount_cents": S}``: the count and amount
after this order. A malformed order is dead-lettered.

The same logic as the Rust guest ``guests/running-totals``, byte for byte and
key for key: the state under ``customer/<C>`` is
``{"orders":N,"amount_cents":S}``, so the three languages' guests can take
over each other's state.
"""

import weir_guest as weir
from orders import json_string, parse_order


def totals_of(key: str) -> dict:
    """The totals stored under ``key``; zeros when there are none (or they are
    not totals, as the Rust guest's ``get_json`` gives its default)."""
    t = weir.state.get_json(key)
    if (
        isinstance(t, dict)
        and type(t.get("orders")) is int
        and 0 <= t["orders"] < 1 << 64
        and type(t.get("amount_cents")) is int
        and -(1 << 63) <= t["amount_cents"] < 1 << 63
    ):
        return {"orders": t["orders"], "amount_cents": t["amount_cents"]}
    return {"orders": 0, "amount_cents": 0}


class RunningTotals(weir.Processor):
    def init(self, config: weir.Config) -> None:
        self.topic = config.get("output", "customer-totals")

    def process(self, batch: weir.Batch) -> None:
        for record in batch.records():
            try:
                order = parse_order(record.value)
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError too
                raise record.fail(weir.FailureKind.DEAD_LETTER, f"malformed order: {e}")
            key = f"customer/{order['customer']}"
            totals = totals_of(key)
            totals["orders"] += 1
            totals["amount_cents"] += order["amount_cents"]
            value = (
                f'{{"customer":{json_string(order["customer"])},'
                f'"orders":{totals["orders"]},"amount_cents":{totals["amount_cents"]}}}'
            )
            try:
                weir.state.put_json(key, totals)
                weir.emit(self.topic, order["customer"], value)
            except (weir.StateError, weir.EmitError) as e:
                raise record.fail(weir.FailureKind.FATAL, e)


WitWorld = weir.export_processor(RunningTotals)
