"""A long-running group consumer for the consumer-group tests
(tests/src/kafka_groups_env.rs starts it).

Usage: group_consumer.py CONFIG_JSON, where CONFIG is
{"client": "confluent" | "kafka-python", "bootstrap": "HOST:PORT",
 "group": ..., "topics": [...], "config": {extra client settings},
 "stop_after": n (optional: stop once n records were consumed)}.

It prints one JSON object per line on stdout, flushed at once:
- {"event": "assigned" | "revoked" | "lost", "partitions": [[topic, p], ...], "time": t}
  (incremental under cooperative-sticky; "revoked" is printed after the
  revoked partitions' positions were committed);
- {"event": "record", "topic", "partition", "offset", "value"};
- {"event": "committed", "offsets": [[topic, p, next offset], ...]};
- {"event": "error", "what": ...};
- {"event": "closed"} at the end.
It consumes, committing what it consumed after every poll, until a line
"stop" arrives on stdin (or stdin closes) or stop_after is reached; then it
commits and closes (leaving the group, unless it is a static member).
"""

import json
import sys
import threading
import time

lock = threading.Lock()


def emit(event, **fields):
    fields["event"] = event
    with lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


stop = threading.Event()


def watch_stdin():
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


def confluent(cfg):
    import confluent_kafka as ck

    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "broker.address.family": "v4",
        "group.id": cfg["group"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if cfg.get("config", {}).get("group.protocol") != "consumer":
        # The consumer protocol (KIP-848) takes both from the broker.
        conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    conf.update(cfg.get("config", {}))
    c = ck.Consumer(conf)
    positions = {}

    def commit(only=None):
        offsets = [
            ck.TopicPartition(t, p, o)
            for (t, p), o in positions.items()
            if only is None or (t, p) in only
        ]
        if not offsets:
            return
        try:
            c.commit(offsets=offsets, asynchronous=False)
        except ck.KafkaException as e:
            emit("error", what=f"commit: {e}")
            return
        emit("committed", offsets=[[o.topic, o.partition, o.offset] for o in offsets])
        for o in offsets:
            positions.pop((o.topic, o.partition), None)

    def parts(ps):
        return [[p.topic, p.partition] for p in ps]

    def on_assign(consumer, ps):
        emit("assigned", partitions=parts(ps), time=time.time())

    def on_revoke(consumer, ps):
        commit({(p.topic, p.partition) for p in ps})
        emit("revoked", partitions=parts(ps), time=time.time())

    def on_lost(consumer, ps):
        for p in ps:
            positions.pop((p.topic, p.partition), None)
        emit("lost", partitions=parts(ps), time=time.time())

    c.subscribe(cfg["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    consumed = 0
    limit = cfg.get("stop_after")
    while not stop.is_set() and (limit is None or consumed < limit):
        batch = c.consume(num_messages=50, timeout=0.2)
        for m in batch:
            if m.error():
                emit("error", what=str(m.error()))
                continue
            if limit is not None and consumed >= limit:
                break
            emit("record", topic=m.topic(), partition=m.partition(), offset=m.offset(),
                 value=m.value().decode())
            positions[(m.topic(), m.partition())] = m.offset() + 1
            consumed += 1
        commit()
    commit()
    c.close()
    emit("closed")


def kafka_python(cfg):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.structs import OffsetAndMetadata

    settings = dict(
        bootstrap_servers=cfg["bootstrap"],
        group_id=cfg["group"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    settings.update(cfg.get("config", {}))
    c = KafkaConsumer(**settings)
    positions = {}

    def meta(offset):
        try:
            return OffsetAndMetadata(offset, "", -1)
        except TypeError:
            return OffsetAndMetadata(offset, "")

    def commit(only=None):
        offsets = {
            TopicPartition(t, p): meta(o)
            for (t, p), o in positions.items()
            if only is None or (t, p) in only
        }
        if not offsets:
            return
        try:
            c.commit(offsets)
        except Exception as e:  # noqa: BLE001: reported, and the test decides
            emit("error", what=f"commit: {e}")
            return
        emit("committed", offsets=[[tp.topic, tp.partition, om.offset] for tp, om in offsets.items()])
        for tp in offsets:
            positions.pop((tp.topic, tp.partition), None)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            commit({(tp.topic, tp.partition) for tp in revoked})
            emit("revoked", partitions=[[tp.topic, tp.partition] for tp in revoked], time=time.time())

        def on_partitions_assigned(self, assigned):
            emit("assigned", partitions=[[tp.topic, tp.partition] for tp in assigned], time=time.time())

    c.subscribe(cfg["topics"], listener=Listener())
    consumed = 0
    limit = cfg.get("stop_after")
    while not stop.is_set() and (limit is None or consumed < limit):
        batch = c.poll(timeout_ms=200, max_records=50)
        for tp, messages in batch.items():
            for m in messages:
                if limit is not None and consumed >= limit:
                    break
                emit("record", topic=tp.topic, partition=tp.partition, offset=m.offset,
                     value=m.value.decode())
                positions[(tp.topic, tp.partition)] = m.offset + 1
                consumed += 1
        commit()
    commit()
    c.close()
    emit("closed")


def main():
    cfg = json.loads(sys.argv[1])
    threading.Thread(target=watch_stdin, daemon=True).start()
    {"confluent": confluent, "kafka-python": kafka_python}[cfg["client"]](cfg)


if __name__ == "__main__":
    main()
