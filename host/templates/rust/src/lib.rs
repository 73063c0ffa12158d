//! {{name}}: a weir guest. For every record it counts the records seen so
//! far under the record's key (in state, under `count/<key>`) and emits the
//! value in upper case to the topic named by the `output` configuration key
//! (default `out`), with that count in the header `count`. A record with an
//! empty value is sent to the dead-letter topic.

use std::cell::RefCell;

use weir_guest::{Batch, Config, Failure, FailureKind, Level, Processor, state};

thread_local! {
    /// The output topic, set by `init` (the host calls it on every fresh
    /// instance, so it is set before each batch).
    static OUTPUT: RefCell<String> = RefCell::new(String::new());
}

struct Guest;

impl Processor for Guest {
    fn init(config: &Config) -> Result<(), String> {
        let topic = config.get("output").unwrap_or("out").to_string();
        OUTPUT.with(|o| *o.borrow_mut() = topic);
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = OUTPUT.with(|o| o.borrow().clone());
        for record in batch.records() {
            let value = record.value();
            if value.is_empty() {
                weir_guest::log(Level::Warn, &format!("empty value at offset {}", record.offset()));
                return Err(record.fail(FailureKind::DeadLetter, "empty value"));
            }
            let key = [b"count/".as_slice(), record.key().unwrap_or_default()].concat();
            let count = state::get(&key)
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            let count = count.to_string();
            state::put(&key, count.as_bytes()).map_err(|e| record.fail(FailureKind::Fatal, e))?;
            let upper = value.to_ascii_uppercase();
            weir_guest::emit(&topic, record.key(), &upper, &[("count", count.as_bytes())])
                .map_err(|e| record.fail(FailureKind::Fatal, e))?;
        }
        Ok(())
    }
}

weir_guest::export_processor!(Guest);

#[cfg(test)]
mod tests {
    //! Native unit tests: `cargo test` runs `process` on batches built by
    //! hand, with emits, logs and state captured in memory.

    use weir_guest::FailureKind;
    use weir_guest::testing::{Harness, TestBatch};

    use super::Guest;

    #[test]
    fn emits_upper_case_values_with_a_count_per_key() {
        let mut harness = Harness::new().config("output", "shouted");
        let batch = TestBatch::new()
            .keyed("alice", "hello")
            .keyed("bob", "hi")
            .keyed("alice", "again");
        let run = harness.run::<Guest>(&batch);
        assert!(run.result.is_ok(), "{:?}", run.result);
        let values: Vec<String> = run.emits.iter().map(|e| e.value_str()).collect();
        assert_eq!(values, ["HELLO", "HI", "AGAIN"]);
        assert!(run.emits.iter().all(|e| e.topic == "shouted"));
        assert_eq!(run.emits[2].header("count"), Some(b"2".as_slice()));
        assert_eq!(harness.state_str("count/alice").as_deref(), Some("2"));
    }

    #[test]
    fn an_empty_value_is_dead_lettered_and_its_batch_keeps_no_state() {
        let mut harness = Harness::new().with_state("count/bob", "4");
        let run = harness.run::<Guest>(&TestBatch::new().keyed("bob", "ok").keyed("bob", ""));
        let failure = run.result.expect_err("the empty value fails");
        assert_eq!(failure.index, 1);
        assert!(matches!(failure.kind, FailureKind::DeadLetter));
        assert_eq!(run.logs.len(), 1, "the guest logged a warning");
        assert_eq!(harness.state_str("count/bob").as_deref(), Some("4"));
    }
}
