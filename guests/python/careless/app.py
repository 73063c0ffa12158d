"""careless, in Python: a deliberately buggy guest for the tests. It emits
each order's id to ``ids`` (or the ``output`` configuration key) and never
expects malformed JSON, so ``json.loads`` raises out of ``process``.
The host sees a trap: it commits nothing and retries, then gives up.
"""

import json

import weir_guest as weir


class Careless(weir.Processor):
    def init(self, config: weir.Config) -> None:
        self.topic = config.get("output", "ids")

    def process(self, batch: weir.Batch) -> None:
        for record in batch.records():
            order = json.loads(record.value)  # raises on malformed input: the bug
            weir.emit(self.topic, None, str(order["id"]))


WitWorld = weir.export_processor(Careless)
