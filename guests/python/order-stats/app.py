"""order-stats, in Python: one summary record per batch of orders, computed
with the standard library's ``json`` and ``statistics``.

The summary goes to ``order-stats`` (or the topic named by the ``output``
configuration key), keyed by ``<topic>/<partition>``::

    {"topic": "orders", "partition": 0, "first_offset": 0, "last_offset": 499,
     "orders": 498, "mean_cents": 61234.5, "median_cents": 40100.0,
     "stdev_cents": 51234.9, "max_cents": 990000,
     "currencies": {"EUR": 200, "GBP": 98, "JPY": 50, "USD": 150}}

Amounts are in cents; mean, median and (population) standard deviation are
rounded to one decimal. A malformed order is skipped with a warning in the
host's log and counted in ``"skipped"`` when there is any.
"""

import json
import statistics
from collections import Counter

import weir_guest as weir


class OrderStats(weir.Processor):
    def init(self, config: weir.Config) -> None:
        self.topic = config.get("output", "order-stats")

    def process(self, batch: weir.Batch) -> None:
        amounts = []
        currencies = Counter()
        skipped = 0
        for record in batch.records():
            try:
                order = json.loads(record.value)
                amounts.append(int(order["amount_cents"]))
                currencies[str(order["currency"])] += 1
            except (ValueError, KeyError, TypeError) as e:
                skipped += 1
                weir.log(weir.Level.WARN, f"order-stats: skipping offset {record.offset}: {e!r}")
        records = list(batch.records())
        summary = {
            "topic": batch.topic,
            "partition": batch.partition,
            "first_offset": records[0].offset,
            "last_offset": records[-1].offset,
            "orders": len(amounts),
        }
        if amounts:
            summary.update(
                mean_cents=round(statistics.fmean(amounts), 1),
                median_cents=round(float(statistics.median(amounts)), 1),
                stdev_cents=round(statistics.pstdev(amounts), 1),
                max_cents=max(amounts),
                currencies=dict(sorted(currencies.items())),
            )
        if skipped:
            summary["skipped"] = skipped
        key = f"{batch.topic}/{batch.partition}"
        try:
            weir.emit(self.topic, key, json.dumps(summary))
        except weir.EmitError as e:
            raise records[-1].fail(weir.FailureKind.FATAL, e)


WitWorld = weir.export_processor(OrderStats)
