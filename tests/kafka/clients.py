"""Drives a real Kafka client against weir's listener for the tests.

Usage: clients.py < REQUEST_JSON; prints one JSON answer on stdout.

A request is {"op": ..., "client": "confluent" | "kafka-python", "bootstrap": "HOST:PORT", ...}:
- produce: topic, codec, records [{partition, key, value, headers, timestamp}]
  (key/value/header values in hex, key may be null), idempotent (bool),
  config (extra producer settings)
  -> {"offsets": [[partition, offset], ...]}
- consume: topic, partition, offset, count (assign, no group), config
  (extra consumer settings: TLS, SASL)
  -> {"records": [{offset, key, value, headers, timestamp}]} (a null
  value or header value is null, an empty one "")
- offsets_for_time: topic, partition, timestamp -> {"offset": n}
- metadata: topic -> {"partitions": n} or {"error": "..."}
- create (confluent only): topic, partitions -> {"created": topic}

"config" holds extra client settings in each client's own spelling
(confluent: "security.protocol"; kafka-python: "security_protocol").
"""

import json
import sys


def unhex(v):
    return None if v is None else bytes.fromhex(v)


def tohex(v):
    return None if v is None else bytes(v).hex()


def confluent(req):
    import confluent_kafka as ck

    base = {"bootstrap.servers": req["bootstrap"], "broker.address.family": "v4"}
    base.update(req.get("config", {}))
    op = req["op"]
    if op == "produce":
        conf = dict(base)
        conf["compression.type"] = req.get("codec", "none")
        conf["linger.ms"] = 5
        if req.get("idempotent"):
            conf["enable.idempotence"] = True
        p = ck.Producer(conf)
        offsets = []
        errors = []

        def done(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                offsets.append([msg.partition(), msg.offset()])

        for r in req["records"]:
            kwargs = dict(
                topic=req["topic"],
                value=unhex(r["value"]),
                key=unhex(r.get("key")),
                headers=[(n, unhex(v)) for n, v in r.get("headers", [])],
                on_delivery=done,
            )
            if r.get("partition") is not None:
                kwargs["partition"] = r["partition"]
            if r.get("timestamp") is not None:
                kwargs["timestamp"] = r["timestamp"]
            p.produce(**kwargs)
            p.poll(0)
        left = p.flush(30)
        if left or errors:
            return {"error": "; ".join(errors) or f"{left} undelivered"}
        return {"offsets": offsets}
    if op == "consume":
        conf = dict(base)
        conf.update({"group.id": "unused-no-commits", "enable.auto.commit": False})
        c = ck.Consumer(conf)
        c.assign([ck.TopicPartition(req["topic"], req["partition"], req["offset"])])
        out = []
        import time

        deadline = time.time() + 30
        while len(out) < req["count"] and time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                c.close()
                return {"error": str(m.error())}
            out.append(
                {
                    "offset": m.offset(),
                    "key": tohex(m.key()),
                    "value": tohex(m.value()),
                    "headers": [[n, tohex(v)] for n, v in (m.headers() or [])],
                    "timestamp": m.timestamp()[1],
                }
            )
        c.close()
        return {"records": out}
    if op == "offsets_for_time":
        conf = dict(base)
        conf.update({"group.id": "unused-no-commits"})
        c = ck.Consumer(conf)
        tp = ck.TopicPartition(req["topic"], req["partition"], req["timestamp"])
        found = c.offsets_for_times([tp], timeout=10)
        c.close()
        if found[0].error:
            return {"error": str(found[0].error)}
        return {"offset": found[0].offset}
    if op == "metadata":
        from confluent_kafka.admin import AdminClient

        a = AdminClient(base)
        md = a.list_topics(topic=req["topic"], timeout=10)
        t = md.topics[req["topic"]]
        if t.error is not None:
            return {"error": t.error.name()}
        return {"partitions": len(t.partitions)}
    if op == "create":
        from confluent_kafka.admin import AdminClient, NewTopic

        a = AdminClient(base)
        futures = a.create_topics([NewTopic(req["topic"], req["partitions"])])
        futures[req["topic"]].result(timeout=15)
        return {"created": req["topic"]}
    raise SystemExit(f"unknown op {op}")


def kafka_python(req):
    import kafka
    from kafka import TopicPartition

    op = req["op"]
    if op == "produce":
        codec = req.get("codec", "none")
        p = kafka.KafkaProducer(
            bootstrap_servers=req["bootstrap"],
            compression_type=None if codec == "none" else codec,
            enable_idempotence=bool(req.get("idempotent")),
            linger_ms=5,
            **req.get("config", {}),
        )
        futures = []
        for r in req["records"]:
            futures.append(
                p.send(
                    req["topic"],
                    value=unhex(r["value"]),
                    key=unhex(r.get("key")),
                    headers=[(n, unhex(v)) for n, v in r.get("headers", [])],
                    partition=r.get("partition"),
                    timestamp_ms=r.get("timestamp"),
                )
            )
        p.flush(30)
        offsets = []
        for f in futures:
            md = f.get(timeout=30)
            offsets.append([md.partition, md.offset])
        p.close()
        return {"offsets": offsets}
    if op == "consume":
        c = kafka.KafkaConsumer(
            bootstrap_servers=req["bootstrap"],
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=30000,
            **req.get("config", {}),
        )
        tp = TopicPartition(req["topic"], req["partition"])
        c.assign([tp])
        c.seek(tp, req["offset"])
        out = []
        for m in c:
            out.append(
                {
                    "offset": m.offset,
                    "key": tohex(m.key),
                    "value": tohex(m.value),
                    "headers": [[n, tohex(v)] for n, v in (m.headers or [])],
                    "timestamp": m.timestamp,
                }
            )
            if len(out) >= req["count"]:
                break
        c.close()
        return {"records": out}
    if op == "offsets_for_time":
        c = kafka.KafkaConsumer(bootstrap_servers=req["bootstrap"], group_id=None)
        tp = TopicPartition(req["topic"], req["partition"])
        found = c.offsets_for_times({tp: req["timestamp"]})
        c.close()
        return {"offset": found[tp].offset if found[tp] else -1}
    raise SystemExit(f"unknown op {op}")


def main():
    req = json.load(sys.stdin)
    try:
        answer = {"confluent": confluent, "kafka-python": kafka_python}[req["client"]](req)
    except Exception as e:  # the test shows the client's own words
        answer = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
