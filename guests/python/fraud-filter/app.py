"""fraud-filter, in Python: emits suspicious orders to the ``alerts`` topic (or
the topic named by the ``output`` configuration key).

The same logic as the Rust guest ``guests/fraud-filter``, byte for byte: an
order is suspicious when it is large (at least 5,000.00 in any currency), or
when it is at least 2,000.00 and paid in a currency that is not its country's.
The alert is keyed by customer and its value is a JSON object with a fixed
field order. A malformed order is sent to the dead-letter topic.
"""

import weir_guest as weir
from orders import json_string, parse_order

LARGE_CENTS = 500_000
FOREIGN_CENTS = 200_000
HOME_CURRENCY = {"US": "USD", "GB": "GBP", "JP": "JPY"}


def reason(order: dict):
    cents = order["amount_cents"]
    if cents >= LARGE_CENTS:
        return "large-amount"
    home = HOME_CURRENCY.get(order["country"], "EUR")
    if cents >= FOREIGN_CENTS and order["currency"] != home:
        return "foreign-currency"
    return None


class FraudFilter(weir.Processor):
    def init(self, config: weir.Config) -> None:
        self.topic = config.get("output", "alerts")

    def process(self, batch: weir.Batch) -> None:
        # Every alert goes in one host call at the end (``weir.Emits``); a
        # malformed order ends the call early, and the host runs the records
        # before it again, which sends their alerts then.
        out = weir.Emits(self.topic)
        for record in batch.records():
            try:
                order = parse_order(record.value)
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError too
                raise record.fail(weir.FailureKind.DEAD_LETTER, f"malformed order: {e}")
            why = reason(order)
            if why is None:
                continue
            alert = (
                f'{{"order_id":{order["id"]},"customer":{json_string(order["customer"])},'
                f'"amount_cents":{order["amount_cents"]},"currency":{json_string(order["currency"])},'
                f'"reason":"{why}"}}'
            )
            out.push(order["customer"], alert)
        try:
            out.send()
        except weir.EmitError as e:
            raise next(batch.records()).fail(weir.FailureKind.FATAL, e)


WitWorld = weir.export_processor(FraudFilter)
