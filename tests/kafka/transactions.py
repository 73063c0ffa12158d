"""Drives confluent-kafka's transactional producer against weir's listener.

Usage: transactions.py < REQUEST_JSON. Every op but `transform` prints one
JSON answer on stdout; `transform` prints progress lines and then `done`.

A request is {"op": ..., "bootstrap": "HOST:PORT", ...}:
- txn: id, topic, transactions [{"records": [[partition, value]], "commit": bool,
  "offsets": {group, topic, partition, offset} (optional)}]
  -> {"results": ["committed" | "aborted" | "error: ..."]}
- read: topic, partitions, isolation ("read_committed" | "read_uncommitted"):
  every partition from the start to its end -> {"records": [[partition, offset, value]]}
- zombie: id, topic -> the first producer's error when a second one with the
  same transactional id took over: {"zombie": "...", "fatal": bool, "successor": "committed"}
- committed: group, topic, partitions -> {"offsets": [offset per partition]}
- transform: id, group, input, output, partitions, batch, pause_ms, seconds:
  consume-transform-produce (value -> b"out:" + value, same key and partition)
  with the consumed offsets sent to each transaction; starts over with fresh
  clients after any error; prints `committed N` after each commit, `done`
  once the group's committed offsets reach the input's end.
"""

import json
import sys
import time

import confluent_kafka as ck


def conf(req, **extra):
    c = {"bootstrap.servers": req["bootstrap"], "broker.address.family": "v4"}
    c.update(extra)
    return c


def txn(req):
    p = ck.Producer(conf(req, **{"transactional.id": req["id"], "transaction.timeout.ms": 20000}))
    p.init_transactions(30)
    results = []
    for t in req["transactions"]:
        try:
            p.begin_transaction()
            for partition, value in t["records"]:
                p.produce(req["topic"], value=value.encode(), partition=partition)
            if t.get("offsets"):
                o = t["offsets"]
                c = ck.Consumer(conf(req, **{"group.id": o["group"], "enable.auto.commit": False}))
                p.send_offsets_to_transaction(
                    [ck.TopicPartition(o["topic"], o["partition"], o["offset"])],
                    c.consumer_group_metadata(),
                    30,
                )
                c.close()
            if t["commit"]:
                p.commit_transaction(15)
                results.append("committed")
            else:
                p.abort_transaction(15)
                results.append("aborted")
        except ck.KafkaException as e:
            results.append(f"error: {e}")
            break
    return {"results": results}


def read(req):
    c = ck.Consumer(
        conf(
            req,
            **{
                "group.id": "unused-no-commits",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": req["isolation"],
            },
        )
    )
    n = req["partitions"]
    c.assign([ck.TopicPartition(req["topic"], p, ck.OFFSET_BEGINNING) for p in range(n)])
    at_end = set()
    out = []
    deadline = time.time() + 30
    while len(at_end) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == ck.KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
                continue
            c.close()
            return {"error": str(m.error())}
        out.append([m.partition(), m.offset(), m.value().decode()])
    c.close()
    if len(at_end) < n:
        return {"error": f"only partitions {sorted(at_end)} reached their end"}
    return {"records": out}


def zombie(req):
    settings = {"transactional.id": req["id"], "transaction.timeout.ms": 20000}
    first = ck.Producer(conf(req, **settings))
    first.init_transactions(30)
    first.begin_transaction()
    first.produce(req["topic"], value=b"zombie", partition=0)
    first.flush(15)
    second = ck.Producer(conf(req, **settings))
    second.init_transactions(30)
    answer = {}
    try:
        first.produce(req["topic"], value=b"zombie-late", partition=0)
        first.commit_transaction(15)
        answer["zombie"] = "committed"
    except ck.KafkaException as e:
        answer["zombie"] = str(e)
        answer["fatal"] = e.args[0].fatal()
    second.begin_transaction()
    second.produce(req["topic"], value=b"successor", partition=0)
    second.commit_transaction(15)
    answer["successor"] = "committed"
    return answer


def committed(req):
    c = ck.Consumer(conf(req, **{"group.id": req["group"], "enable.auto.commit": False}))
    tps = [ck.TopicPartition(req["topic"], p) for p in range(req["partitions"])]
    found = c.committed(tps, timeout=15)
    c.close()
    return {"offsets": [tp.offset for tp in found]}


def say(line):
    print(line, flush=True)


def finished(consumer, req):
    tps = [ck.TopicPartition(req["input"], p) for p in range(req["partitions"])]
    done = consumer.committed(tps, timeout=10)
    for tp in done:
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        if tp.offset < high:
            return False
    return True


def transform(req):
    deadline = time.time() + req["seconds"]
    total = 0
    while time.time() < deadline:
        consumer = None
        producer = None
        try:
            consumer = ck.Consumer(
                conf(
                    req,
                    **{
                        "group.id": req["group"],
                        "enable.auto.commit": False,
                        "auto.offset.reset": "earliest",
                        "isolation.level": "read_committed",
                        "enable.partition.eof": True,
                        "session.timeout.ms": 6000,
                    },
                )
            )
            consumer.subscribe([req["input"]])
            producer = ck.Producer(
                conf(req, **{"transactional.id": req["id"], "transaction.timeout.ms": 20000})
            )
            producer.init_transactions(30)
            while time.time() < deadline:
                msgs = consumer.consume(req["batch"], 1.0)
                errors = [
                    m.error()
                    for m in msgs
                    if m.error() and m.error().code() != ck.KafkaError._PARTITION_EOF
                ]
                if errors:
                    raise ck.KafkaException(errors[0])
                real = [m for m in msgs if not m.error()]
                if not real:
                    if consumer.assignment() and finished(consumer, req):
                        say("done")
                        return
                    continue
                producer.begin_transaction()
                ends = {}
                for m in real:
                    producer.produce(
                        req["output"], key=m.key(), value=b"out:" + m.value(), partition=m.partition()
                    )
                    ends[m.partition()] = m.offset() + 1
                producer.send_offsets_to_transaction(
                    [ck.TopicPartition(req["input"], p, o) for p, o in ends.items()],
                    consumer.consumer_group_metadata(),
                    30,
                )
                producer.commit_transaction(30)
                total += len(real)
                say(f"committed {total}")
                time.sleep(req["pause_ms"] / 1000)
        except ck.KafkaException as e:
            say(f"starting over after {e}")
            if producer is not None:
                try:
                    producer.abort_transaction(5)
                except ck.KafkaException:
                    pass
            time.sleep(1)
        finally:
            if consumer is not None:
                consumer.close()
    raise SystemExit("transform: the input was not consumed in time")


def main():
    req = json.load(sys.stdin)
    ops = {"txn": txn, "read": read, "zombie": zombie, "committed": committed}
    if req["op"] == "transform":
        transform(req)
        return
    try:
        answer = ops[req["op"]](req)
    except Exception as e:  # the test shows the client's own words
        answer = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
