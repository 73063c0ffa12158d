"""{{name}}: a weir guest. For every record it counts the records seen so far
under the record's key (in state, under ``count/<key>``) and emits the value
in upper case to the topic named by the ``output`` configuration key (default
``out``), with that count in the header ``count``. A record with an empty
value is sent to the dead-letter topic.
"""

import weir_guest as weir


class Guest(weir.Processor):
    def init(self, config: weir.Config) -> None:
        self.topic = config.get("output", "out")

    def process(self, batch: weir.Batch) -> None:
        for record in batch.records():
            if len(record.value) == 0:
                weir.log(weir.Level.WARN, f"empty value at offset {record.offset}")
                raise record.fail(weir.FailureKind.DEAD_LETTER, "empty value")
            key = b"count/" + (record.key or b"")
            stored = weir.state.get(key)
            count = str((int(stored) if stored is not None else 0) + 1)
            weir.state.put(key, count)
            weir.emit(self.topic, record.key, record.value.upper(), [("count", count)])


WitWorld = weir.export_processor(Guest)
