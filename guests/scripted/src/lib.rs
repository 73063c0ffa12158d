//! `scripted`: a test guest whose records say what it should do, so integration
//! tests can drive every outcome the host handles. For each record value:
//!
//! - `fail:retry`, `fail:skip`, `fail:dead-letter`, `fail:fatal`: return that
//!   failure at this record's index;
//! - `trap`: panic, which traps the instance;
//! - `spin`: loop forever (the host's deadline must interrupt it);
//! - `grow`: allocate until the memory limit stops it;
//! - `print:TEXT`: write TEXT to stdout;
//! - anything else: emit the record (key, value, headers) to the `output`
//!   configuration key's topic, with a `label` header when one is configured.
//!
//! With the `count` configuration key set, every record first adds one to the
//! state key `seen`, so tests can see which calls' state changes committed.

use weir_guest::{Batch, Config, Failure, FailureKind, Level, Processor};

struct Scripted;

thread_local! {
    static LABEL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static COUNT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn kind(name: &str) -> Option<FailureKind> {
    Some(match name {
        "retry" => FailureKind::Retry,
        "skip" => FailureKind::Skip,
        "dead-letter" => FailureKind::DeadLetter,
        "fatal" => FailureKind::Fatal,
        _ => return None,
    })
}

impl Processor for Scripted {
    fn init(config: &Config) -> Result<(), String> {
        if config.get("reject-init").is_some() {
            return Err("init rejected by configuration".to_string());
        }
        orders::configure_output(config, "");
        LABEL.with(|l| *l.borrow_mut() = config.get("label").unwrap_or("").to_string());
        COUNT.with(|c| c.set(config.get("count").is_some()));
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        let label = LABEL.with(|l| l.borrow().clone());
        let count = COUNT.with(|c| c.get());
        for record in batch.records() {
            if count {
                let seen: u64 = weir_guest::state::get_json(b"seen").unwrap_or(0);
                weir_guest::state::put_json(b"seen", &(seen + 1))
                    .map_err(|e| record.fail(FailureKind::Fatal, e))?;
            }
            let value = record.value_str().unwrap_or("");
            if let Some(name) = value.strip_prefix("fail:") {
                let kind = kind(name).unwrap_or(FailureKind::Fatal);
                return Err(record.fail(
                    kind,
                    format!("scripted {name} at offset {}", record.offset()),
                ));
            }
            match value {
                "trap" => panic!("scripted trap at offset {}", record.offset()),
                "spin" => loop {
                    std::hint::spin_loop();
                },
                "grow" => {
                    let mut hog: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hog.push(vec![1u8; 1 << 20]);
                        std::hint::black_box(&hog);
                    }
                }
                _ => {}
            }
            if let Some(text) = value.strip_prefix("print:") {
                println!("{text}");
                weir_guest::log(Level::Info, &format!("printed {text}"));
            }
            if topic.is_empty() {
                continue;
            }
            let mut headers: Vec<(&str, &[u8])> = record.headers().collect();
            if !label.is_empty() {
                headers.push(("label", label.as_bytes()));
            }
            weir_guest::emit(&topic, record.key(), record.value(), &headers)
                .map_err(|e| record.fail(FailureKind::Fatal, e))?;
        }
        Ok(())
    }
}

weir_guest::export_processor!(Scripted);
